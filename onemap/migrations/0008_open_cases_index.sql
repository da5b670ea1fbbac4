-- Open cases are counted live (overdue depends on the clock): a small partial index that
-- answers "open in this scope and period" by an index-only scan.
CREATE INDEX case_event_open_reported_idx ON case_event (reported_at)
    INCLUDE (district_code, street_code, community_code, grid_code, deadline)
    WHERE status = 'open';
