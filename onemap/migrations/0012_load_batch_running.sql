-- Every load begins by marking the batches whose load died as interrupted (status 'running',
-- their session gone), and the case feed writes a batch per request: without an index that
-- look-up reads the whole of load_batch, a row longer with every request. The running
-- batches are a handful at any time. (IF NOT EXISTS: a database whose ledger is rewritten
-- to the baseline, as tests do, meets it again.)
CREATE INDEX IF NOT EXISTS load_batch_running_idx ON load_batch (id) WHERE status = 'running';
