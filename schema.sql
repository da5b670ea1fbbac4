-- onemap's schema as the migrations in onemap/migrations make it: pg_dump --schema-only of
-- a freshly migrated database, without its comments and settings. Not run by anything: read
-- it to see the tables whole. Written by `make schema` (python -m onemap.migrate);
-- tests/test_schema.py fails when it differs from what the migrations make.

CREATE EXTENSION IF NOT EXISTS postgis WITH SCHEMA public;

CREATE FUNCTION public.data_change_notify() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    PERFORM pg_notify('data_change', NEW.feed || '.' || NEW.version);
    RETURN NULL;
END $$;

CREATE FUNCTION public.data_changed() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    UPDATE data_change SET version = version + 1, changed_at = now() WHERE feed = TG_ARGV[0];
    RETURN NULL;
END $$;

CREATE FUNCTION public.load_batch_alive(batch bigint) RETURNS boolean
    LANGUAGE sql STABLE
    AS $$
    SELECT EXISTS (
        SELECT 1 FROM pg_locks l
        WHERE l.locktype = 'advisory' AND l.classid = 7301 AND l.objsubid = 2
          AND l.objid::bigint = batch AND l.granted
          AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()))
$$;

CREATE FUNCTION public.load_batch_hold(batch bigint) RETURNS void
    LANGUAGE sql
    AS $$ SELECT pg_advisory_lock(7301, batch::int) $$;

CREATE TABLE public.admin_unit (
    code text NOT NULL,
    name text NOT NULL,
    level smallint NOT NULL,
    parent_code text,
    district_code text,
    street_code text,
    community_code text,
    grid_code text,
    geom public.geometry(MultiPolygon,4326) NOT NULL,
    area_km2 double precision NOT NULL,
    properties jsonb DEFAULT '{}'::jsonb NOT NULL,
    batch_id bigint,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT admin_unit_check CHECK (((level = 1) = (parent_code IS NULL))),
    CONSTRAINT admin_unit_level_check CHECK (((level >= 1) AND (level <= 4)))
);

CREATE TABLE public.alarm_action (
    device_id text NOT NULL,
    began_at timestamp with time zone NOT NULL,
    acknowledged_by text NOT NULL,
    acknowledged_at timestamp with time zone DEFAULT now() NOT NULL,
    note text,
    case_id text,
    dispatched_by text,
    dispatched_at timestamp with time zone,
    CONSTRAINT alarm_action_check CHECK (((case_id IS NULL) = (dispatched_at IS NULL)))
);

CREATE TABLE public.app_session (
    id_hash text NOT NULL,
    user_name text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    expires_at timestamp with time zone NOT NULL
);

CREATE TABLE public.app_user (
    name text NOT NULL,
    role text NOT NULL,
    scope_code text,
    personal_grant boolean DEFAULT false NOT NULL,
    password_hash text,
    token_hash text,
    disabled boolean DEFAULT false NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    changed_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT app_user_check CHECK (((role <> 'street_official'::text) OR (scope_code IS NOT NULL))),
    CONSTRAINT app_user_name_check CHECK ((name ~ '^[A-Za-z0-9_.@-]{1,64}$'::text)),
    CONSTRAINT app_user_role_check CHECK ((role = ANY (ARRAY['admin'::text, 'command_center'::text, 'street_official'::text, 'analyst'::text, 'kiosk'::text, 'feed'::text]))),
    CONSTRAINT app_user_token_check CHECK (((role = ANY (ARRAY['kiosk'::text, 'feed'::text])) = (token_hash IS NOT NULL)))
);

CREATE TABLE public.audit_log (
    id bigint NOT NULL,
    at timestamp with time zone DEFAULT now() NOT NULL,
    user_name text NOT NULL,
    role text NOT NULL,
    action text NOT NULL,
    allowed boolean NOT NULL,
    target text,
    detail jsonb DEFAULT '{}'::jsonb NOT NULL
);

CREATE SEQUENCE public.audit_log_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.audit_log_id_seq OWNED BY public.audit_log.id;

CREATE TABLE public.case_event (
    id text NOT NULL,
    channel text NOT NULL,
    case_type text,
    category_1 text NOT NULL,
    category_2 text,
    category_3 text,
    category_4 text,
    title text,
    description text,
    address text,
    reported_at timestamp with time zone NOT NULL,
    accepted_at timestamp with time zone,
    dispatched_at timestamp with time zone,
    handled_at timestamp with time zone,
    feedback_at timestamp with time zone,
    closed_at timestamp with time zone,
    evaluated_at timestamp with time zone,
    deadline timestamp with time zone,
    handling_unit text,
    status text NOT NULL,
    satisfaction smallint,
    resolved_level smallint,
    on_time boolean,
    handling_hours double precision,
    reporter_name text,
    reporter_phone text,
    located_by text NOT NULL,
    geom public.geometry(Point,4326),
    grid_code text,
    community_code text,
    street_code text,
    district_code text NOT NULL,
    properties jsonb DEFAULT '{}'::jsonb NOT NULL,
    batch_id bigint,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    h3 bigint,
    placed_level smallint GENERATED ALWAYS AS (
CASE
    WHEN (grid_code IS NOT NULL) THEN 4
    WHEN (community_code IS NOT NULL) THEN 3
    WHEN (street_code IS NOT NULL) THEN 2
    ELSE 1
END) STORED,
    handler text,
    CONSTRAINT case_event_check CHECK (((located_by = 'point'::text) = (geom IS NOT NULL))),
    CONSTRAINT case_event_located_by_check CHECK ((located_by = ANY (ARRAY['point'::text, 'code'::text]))),
    CONSTRAINT case_event_resolved_level_check CHECK (((resolved_level >= 1) AND (resolved_level <= 4))),
    CONSTRAINT case_event_satisfaction_check CHECK (((satisfaction >= 1) AND (satisfaction <= 5)))
);

CREATE TABLE public.case_hours_day (
    level smallint NOT NULL,
    unit_code text NOT NULL,
    day date NOT NULL,
    buckets smallint[] NOT NULL,
    counts integer[] NOT NULL,
    CONSTRAINT case_hours_day_level_check CHECK (((level >= 1) AND (level <= 3)))
);

CREATE TABLE public.case_hours_week (
    level smallint NOT NULL,
    unit_code text NOT NULL,
    week date NOT NULL,
    buckets smallint[] NOT NULL,
    counts integer[] NOT NULL,
    CONSTRAINT case_hours_week_level_check CHECK (((level >= 1) AND (level <= 3)))
);

CREATE TABLE public.case_merge (
    id bigint NOT NULL,
    decision text NOT NULL,
    event_id text NOT NULL,
    case_ids text[] NOT NULL,
    decided_by text NOT NULL,
    role text NOT NULL,
    scope_code text,
    decided_at timestamp with time zone DEFAULT now() NOT NULL,
    note text DEFAULT ''::text NOT NULL,
    CONSTRAINT case_merge_case_ids_check CHECK ((cardinality(case_ids) >= 2)),
    CONSTRAINT case_merge_check CHECK ((event_id = ANY (case_ids))),
    CONSTRAINT case_merge_decision_check CHECK ((decision = ANY (ARRAY['confirmed'::text, 'rejected'::text])))
);

CREATE SEQUENCE public.case_merge_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.case_merge_id_seq OWNED BY public.case_merge.id;

CREATE TABLE public.case_merge_member (
    merge_id bigint NOT NULL,
    case_id text NOT NULL,
    confirmed boolean NOT NULL,
    duplicate boolean NOT NULL,
    CONSTRAINT case_merge_member_check CHECK ((confirmed OR (NOT duplicate)))
);

CREATE TABLE public.case_rollup (
    level smallint NOT NULL,
    unit_code text NOT NULL,
    day date NOT NULL,
    category_1 text NOT NULL,
    channel text NOT NULL,
    status text NOT NULL,
    total integer NOT NULL,
    closed integer NOT NULL,
    closed_on_time integer NOT NULL,
    closed_late integer NOT NULL,
    closed_same_day integer NOT NULL,
    closed_3d integer NOT NULL,
    h0 integer NOT NULL,
    h1 integer NOT NULL,
    h2 integer NOT NULL,
    h3 integer NOT NULL,
    h4 integer NOT NULL,
    h5 integer NOT NULL,
    h6 integer NOT NULL,
    h7 integer NOT NULL,
    h8 integer NOT NULL,
    h9 integer NOT NULL,
    h10 integer NOT NULL,
    h11 integer NOT NULL,
    h12 integer NOT NULL,
    h13 integer NOT NULL,
    h14 integer NOT NULL,
    h15 integer NOT NULL,
    h16 integer NOT NULL,
    satisfaction_sum integer NOT NULL,
    satisfaction_n integer NOT NULL,
    res_grid integer NOT NULL,
    res_community integer NOT NULL,
    res_street integer NOT NULL,
    res_district integer NOT NULL,
    above_grid integer NOT NULL,
    CONSTRAINT case_rollup_level_check CHECK (((level >= 1) AND (level <= 3)))
);

CREATE TABLE public.case_rollup_week (
    level smallint NOT NULL,
    unit_code text NOT NULL,
    week date NOT NULL,
    category_1 text NOT NULL,
    channel text NOT NULL,
    status text NOT NULL,
    total integer NOT NULL,
    CONSTRAINT case_rollup_week_level_check CHECK (((level >= 1) AND (level <= 2)))
);

CREATE TABLE public.case_supervision (
    id bigint NOT NULL,
    at timestamp with time zone DEFAULT now() NOT NULL,
    user_name text NOT NULL,
    role text NOT NULL,
    kind text NOT NULL,
    case_id text,
    handling_unit text,
    note text DEFAULT ''::text NOT NULL,
    district_code text,
    street_code text,
    community_code text,
    grid_code text,
    CONSTRAINT case_supervision_check CHECK (((case_id IS NOT NULL) OR (handling_unit IS NOT NULL))),
    CONSTRAINT case_supervision_kind_check CHECK ((kind = ANY (ARRAY['supervise'::text, 'remind'::text]))),
    CONSTRAINT case_supervision_note_check CHECK ((char_length(note) <= 500))
);

CREATE SEQUENCE public.case_supervision_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.case_supervision_id_seq OWNED BY public.case_supervision.id;

CREATE TABLE public.case_unit_day (
    level smallint NOT NULL,
    unit_code text NOT NULL,
    day date NOT NULL,
    status text NOT NULL,
    total integer NOT NULL,
    closed integer NOT NULL,
    closed_on_time integer NOT NULL,
    closed_late integer NOT NULL,
    closed_same_day integer NOT NULL,
    closed_3d integer NOT NULL,
    h0 integer NOT NULL,
    h1 integer NOT NULL,
    h2 integer NOT NULL,
    h3 integer NOT NULL,
    h4 integer NOT NULL,
    h5 integer NOT NULL,
    h6 integer NOT NULL,
    h7 integer NOT NULL,
    h8 integer NOT NULL,
    h9 integer NOT NULL,
    h10 integer NOT NULL,
    h11 integer NOT NULL,
    h12 integer NOT NULL,
    h13 integer NOT NULL,
    h14 integer NOT NULL,
    h15 integer NOT NULL,
    h16 integer NOT NULL,
    satisfaction_sum integer NOT NULL,
    satisfaction_n integer NOT NULL,
    res_grid integer NOT NULL,
    res_community integer NOT NULL,
    res_street integer NOT NULL,
    res_district integer NOT NULL,
    above_grid integer NOT NULL,
    CONSTRAINT case_unit_day_level_check CHECK (((level >= 1) AND (level <= 4)))
);

CREATE TABLE public.case_unit_week (
    level smallint NOT NULL,
    unit_code text NOT NULL,
    week date NOT NULL,
    status text NOT NULL,
    total integer NOT NULL,
    closed integer NOT NULL,
    closed_on_time integer NOT NULL,
    closed_late integer NOT NULL,
    closed_same_day integer NOT NULL,
    closed_3d integer NOT NULL,
    h0 integer NOT NULL,
    h1 integer NOT NULL,
    h2 integer NOT NULL,
    h3 integer NOT NULL,
    h4 integer NOT NULL,
    h5 integer NOT NULL,
    h6 integer NOT NULL,
    h7 integer NOT NULL,
    h8 integer NOT NULL,
    h9 integer NOT NULL,
    h10 integer NOT NULL,
    h11 integer NOT NULL,
    h12 integer NOT NULL,
    h13 integer NOT NULL,
    h14 integer NOT NULL,
    h15 integer NOT NULL,
    h16 integer NOT NULL,
    satisfaction_sum integer NOT NULL,
    satisfaction_n integer NOT NULL,
    res_grid integer NOT NULL,
    res_community integer NOT NULL,
    res_street integer NOT NULL,
    res_district integer NOT NULL,
    above_grid integer NOT NULL,
    CONSTRAINT case_unit_week_level_check CHECK (((level >= 1) AND (level <= 4)))
);

CREATE TABLE public.data_change (
    feed text NOT NULL,
    version bigint DEFAULT 0 NOT NULL,
    changed_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE public.facility (
    id text NOT NULL,
    kind text NOT NULL,
    name text NOT NULL,
    address text,
    properties jsonb DEFAULT '{}'::jsonb NOT NULL,
    geom public.geometry(Point,4326) NOT NULL,
    grid_code text NOT NULL,
    community_code text NOT NULL,
    street_code text NOT NULL,
    district_code text NOT NULL,
    batch_id bigint,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    h3 bigint
);

CREATE TABLE public.grid_neighbour (
    grid_code text NOT NULL,
    neighbour_code text NOT NULL
);

CREATE TABLE public.grid_piece (
    grid_code text NOT NULL,
    geom public.geometry(Polygon,4326) NOT NULL
);

CREATE TABLE public.grid_worker (
    id text NOT NULL,
    grid_code text NOT NULL,
    name text NOT NULL,
    role text NOT NULL,
    phone text,
    properties jsonb DEFAULT '{}'::jsonb NOT NULL,
    community_code text NOT NULL,
    street_code text NOT NULL,
    district_code text NOT NULL,
    batch_id bigint,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT grid_worker_role_check CHECK ((role = ANY (ARRAY['full_time'::text, 'part_time'::text, 'station_head'::text])))
);

CREATE TABLE public.iot_dead_letter (
    id bigint NOT NULL,
    received_at timestamp with time zone DEFAULT now() NOT NULL,
    topic text NOT NULL,
    payload text NOT NULL,
    field text,
    reason text NOT NULL,
    digest text GENERATED ALWAYS AS (md5(((topic || '
'::text) || payload))) STORED NOT NULL
);

CREATE SEQUENCE public.iot_dead_letter_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.iot_dead_letter_id_seq OWNED BY public.iot_dead_letter.id;

CREATE TABLE public.iot_device (
    id text NOT NULL,
    kind text NOT NULL,
    name text,
    status text NOT NULL,
    last_seen timestamp with time zone,
    properties jsonb DEFAULT '{}'::jsonb NOT NULL,
    geom public.geometry(Point,4326) NOT NULL,
    grid_code text NOT NULL,
    community_code text NOT NULL,
    street_code text NOT NULL,
    district_code text NOT NULL,
    batch_id bigint,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    h3 bigint,
    CONSTRAINT iot_device_status_check CHECK ((status = ANY (ARRAY['online'::text, 'offline'::text, 'alarm'::text])))
)
WITH (fillfactor='50');

CREATE TABLE public.iot_event (
    device_id text NOT NULL,
    ts timestamp with time zone NOT NULL,
    event_type text NOT NULL,
    status text,
    metric text DEFAULT ''::text NOT NULL,
    value double precision,
    properties jsonb DEFAULT '{}'::jsonb NOT NULL,
    grid_code text NOT NULL,
    community_code text NOT NULL,
    street_code text NOT NULL,
    district_code text NOT NULL,
    batch_id bigint,
    CONSTRAINT iot_event_status_check CHECK ((status = ANY (ARRAY['online'::text, 'offline'::text, 'alarm'::text])))
);

CREATE TABLE public.load_batch (
    id bigint NOT NULL,
    kind text NOT NULL,
    source text NOT NULL,
    file_hash text,
    mapping jsonb DEFAULT '{}'::jsonb NOT NULL,
    started_at timestamp with time zone DEFAULT now() NOT NULL,
    finished_at timestamp with time zone,
    read_count bigint DEFAULT 0 NOT NULL,
    loaded_count bigint DEFAULT 0 NOT NULL,
    updated_count bigint DEFAULT 0 NOT NULL,
    rejected_count bigint DEFAULT 0 NOT NULL,
    status text DEFAULT 'running'::text NOT NULL,
    message text,
    report jsonb DEFAULT '{}'::jsonb NOT NULL,
    CONSTRAINT load_batch_status_check CHECK ((status = ANY (ARRAY['running'::text, 'committed'::text, 'failed'::text, 'dry-run'::text, 'interrupted'::text])))
);

CREATE SEQUENCE public.load_batch_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.load_batch_id_seq OWNED BY public.load_batch.id;

CREATE VIEW public.load_batch_state AS
 SELECT b.id,
    b.kind,
    b.source,
    b.file_hash,
    b.mapping,
    b.started_at,
    b.finished_at,
    b.read_count,
    b.loaded_count,
    b.updated_count,
    b.rejected_count,
    b.status,
    b.message,
    b.report,
        CASE
            WHEN ((b.status = 'running'::text) AND (NOT public.load_batch_alive(b.id))) THEN 'interrupted'::text
            ELSE b.status
        END AS state
   FROM public.load_batch b;

CREATE TABLE public.login_failure (
    name text NOT NULL,
    failures integer NOT NULL,
    last_at timestamp with time zone NOT NULL,
    CONSTRAINT login_failure_name_check CHECK ((name ~ '^[A-Za-z0-9_.@-]{1,64}$'::text))
);

CREATE TABLE public.rejected_row (
    id bigint NOT NULL,
    batch_id bigint NOT NULL,
    source_file text NOT NULL,
    row_number bigint NOT NULL,
    field text,
    reason text NOT NULL,
    raw jsonb DEFAULT '{}'::jsonb NOT NULL
);

CREATE SEQUENCE public.rejected_row_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.rejected_row_id_seq OWNED BY public.rejected_row.id;

CREATE TABLE public.rollup_zone (
    one boolean DEFAULT true NOT NULL,
    zone text NOT NULL,
    CONSTRAINT rollup_zone_one_check CHECK (one)
);

CREATE TABLE public.schema_migration (
    version integer NOT NULL,
    name text NOT NULL,
    applied_at timestamp with time zone DEFAULT now() NOT NULL
);

ALTER TABLE ONLY public.audit_log ALTER COLUMN id SET DEFAULT nextval('public.audit_log_id_seq'::regclass);

ALTER TABLE ONLY public.case_merge ALTER COLUMN id SET DEFAULT nextval('public.case_merge_id_seq'::regclass);

ALTER TABLE ONLY public.case_supervision ALTER COLUMN id SET DEFAULT nextval('public.case_supervision_id_seq'::regclass);

ALTER TABLE ONLY public.iot_dead_letter ALTER COLUMN id SET DEFAULT nextval('public.iot_dead_letter_id_seq'::regclass);

ALTER TABLE ONLY public.load_batch ALTER COLUMN id SET DEFAULT nextval('public.load_batch_id_seq'::regclass);

ALTER TABLE ONLY public.rejected_row ALTER COLUMN id SET DEFAULT nextval('public.rejected_row_id_seq'::regclass);

ALTER TABLE ONLY public.admin_unit
    ADD CONSTRAINT admin_unit_pkey PRIMARY KEY (code);

ALTER TABLE ONLY public.alarm_action
    ADD CONSTRAINT alarm_action_pkey PRIMARY KEY (device_id, began_at);

ALTER TABLE ONLY public.app_session
    ADD CONSTRAINT app_session_pkey PRIMARY KEY (id_hash);

ALTER TABLE ONLY public.app_user
    ADD CONSTRAINT app_user_pkey PRIMARY KEY (name);

ALTER TABLE ONLY public.app_user
    ADD CONSTRAINT app_user_token_hash_key UNIQUE (token_hash);

ALTER TABLE ONLY public.audit_log
    ADD CONSTRAINT audit_log_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.case_event
    ADD CONSTRAINT case_event_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.case_hours_day
    ADD CONSTRAINT case_hours_day_pkey PRIMARY KEY (level, unit_code, day);

ALTER TABLE ONLY public.case_hours_week
    ADD CONSTRAINT case_hours_week_pkey PRIMARY KEY (level, unit_code, week);

ALTER TABLE ONLY public.case_merge_member
    ADD CONSTRAINT case_merge_member_pkey PRIMARY KEY (merge_id, case_id);

ALTER TABLE ONLY public.case_merge
    ADD CONSTRAINT case_merge_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.case_rollup
    ADD CONSTRAINT case_rollup_pkey PRIMARY KEY (level, unit_code, day, category_1, channel, status) INCLUDE (total);

ALTER TABLE ONLY public.case_rollup_week
    ADD CONSTRAINT case_rollup_week_pkey PRIMARY KEY (level, unit_code, week, category_1, channel, status) INCLUDE (total);

ALTER TABLE ONLY public.case_supervision
    ADD CONSTRAINT case_supervision_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.case_unit_day
    ADD CONSTRAINT case_unit_day_pkey PRIMARY KEY (level, unit_code, day, status) INCLUDE (total);

ALTER TABLE ONLY public.case_unit_week
    ADD CONSTRAINT case_unit_week_pkey PRIMARY KEY (level, unit_code, week, status) INCLUDE (total);

ALTER TABLE ONLY public.data_change
    ADD CONSTRAINT data_change_pkey PRIMARY KEY (feed);

ALTER TABLE ONLY public.facility
    ADD CONSTRAINT facility_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.grid_neighbour
    ADD CONSTRAINT grid_neighbour_pkey PRIMARY KEY (grid_code, neighbour_code);

ALTER TABLE ONLY public.grid_worker
    ADD CONSTRAINT grid_worker_pkey PRIMARY KEY (id, grid_code);

ALTER TABLE ONLY public.iot_dead_letter
    ADD CONSTRAINT iot_dead_letter_once UNIQUE (digest);

ALTER TABLE ONLY public.iot_dead_letter
    ADD CONSTRAINT iot_dead_letter_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.iot_device
    ADD CONSTRAINT iot_device_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.iot_event
    ADD CONSTRAINT iot_event_pkey PRIMARY KEY (device_id, ts, event_type, metric);

ALTER TABLE ONLY public.load_batch
    ADD CONSTRAINT load_batch_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.login_failure
    ADD CONSTRAINT login_failure_pkey PRIMARY KEY (name);

ALTER TABLE ONLY public.rejected_row
    ADD CONSTRAINT rejected_row_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.rollup_zone
    ADD CONSTRAINT rollup_zone_pkey PRIMARY KEY (one);

ALTER TABLE ONLY public.schema_migration
    ADD CONSTRAINT schema_migration_pkey PRIMARY KEY (version);

CREATE INDEX admin_unit_geom_idx ON public.admin_unit USING gist (geom);

CREATE INDEX admin_unit_level_idx ON public.admin_unit USING btree (level);

CREATE INDEX admin_unit_parent_idx ON public.admin_unit USING btree (parent_code);

CREATE INDEX alarm_action_case_idx ON public.alarm_action USING btree (case_id) WHERE (case_id IS NOT NULL);

CREATE INDEX app_session_user_idx ON public.app_session USING btree (user_name);

CREATE INDEX audit_log_at_idx ON public.audit_log USING btree (at);

CREATE INDEX case_event_category_idx ON public.case_event USING btree (category_1, category_2, reported_at);

CREATE INDEX case_event_community_idx ON public.case_event USING btree (community_code, reported_at);

CREATE INDEX case_event_geom_idx ON public.case_event USING gist (geom);

CREATE INDEX case_event_grid_idx ON public.case_event USING btree (grid_code, reported_at);

CREATE INDEX case_event_handler_idx ON public.case_event USING btree (handler, reported_at) WHERE (handler IS NOT NULL);

CREATE INDEX case_event_open_idx ON public.case_event USING btree (street_code, community_code, grid_code, reported_at) INCLUDE (deadline, district_code) WHERE (status = 'open'::text);

CREATE INDEX case_event_reported_idx ON public.case_event USING btree (reported_at);

CREATE INDEX case_event_street_idx ON public.case_event USING btree (street_code, reported_at);

CREATE INDEX case_merge_member_case_idx ON public.case_merge_member USING btree (case_id) INCLUDE (duplicate);

CREATE UNIQUE INDEX case_merge_member_once_idx ON public.case_merge_member USING btree (case_id) WHERE confirmed;

CREATE INDEX case_supervision_case_idx ON public.case_supervision USING btree (case_id, at);

CREATE INDEX case_supervision_unit_idx ON public.case_supervision USING btree (handling_unit);

CREATE INDEX facility_community_idx ON public.facility USING btree (community_code, kind);

CREATE INDEX facility_geom_idx ON public.facility USING gist (geom);

CREATE INDEX facility_grid_idx ON public.facility USING btree (grid_code);

CREATE INDEX facility_kind_idx ON public.facility USING btree (kind);

CREATE INDEX facility_street_idx ON public.facility USING btree (street_code, kind);

CREATE INDEX grid_piece_geom_idx ON public.grid_piece USING gist (geom);

CREATE INDEX grid_worker_community_idx ON public.grid_worker USING btree (community_code);

CREATE INDEX grid_worker_grid_idx ON public.grid_worker USING btree (grid_code);

CREATE INDEX grid_worker_street_idx ON public.grid_worker USING btree (street_code);

CREATE INDEX iot_dead_letter_received_idx ON public.iot_dead_letter USING btree (received_at);

CREATE INDEX iot_device_community_idx ON public.iot_device USING btree (community_code, status);

CREATE INDEX iot_device_geom_idx ON public.iot_device USING gist (geom);

CREATE INDEX iot_device_grid_idx ON public.iot_device USING btree (grid_code);

CREATE INDEX iot_device_status_idx ON public.iot_device USING btree (status, kind);

CREATE INDEX iot_device_street_idx ON public.iot_device USING btree (street_code, status);

CREATE INDEX iot_event_ts_idx ON public.iot_event USING btree (ts);

CREATE INDEX load_batch_running_idx ON public.load_batch USING btree (id) WHERE (status = 'running'::text);

CREATE INDEX rejected_row_batch_idx ON public.rejected_row USING btree (batch_id, row_number);

CREATE TRIGGER alarm_action_changed AFTER INSERT OR DELETE OR UPDATE ON public.alarm_action FOR EACH STATEMENT EXECUTE FUNCTION public.data_changed('iot');

CREATE TRIGGER case_event_changed AFTER INSERT OR DELETE OR UPDATE OR TRUNCATE ON public.case_event FOR EACH STATEMENT EXECUTE FUNCTION public.data_changed('cases');

CREATE TRIGGER data_change_notify AFTER INSERT OR UPDATE OF version ON public.data_change FOR EACH ROW EXECUTE FUNCTION public.data_change_notify();

CREATE TRIGGER load_batch_changed AFTER INSERT OR DELETE OR UPDATE ON public.load_batch FOR EACH STATEMENT EXECUTE FUNCTION public.data_changed('loads');

ALTER TABLE ONLY public.admin_unit
    ADD CONSTRAINT admin_unit_batch_id_fkey FOREIGN KEY (batch_id) REFERENCES public.load_batch(id);

ALTER TABLE ONLY public.admin_unit
    ADD CONSTRAINT admin_unit_parent_code_fkey FOREIGN KEY (parent_code) REFERENCES public.admin_unit(code) DEFERRABLE INITIALLY DEFERRED;

ALTER TABLE ONLY public.app_session
    ADD CONSTRAINT app_session_user_name_fkey FOREIGN KEY (user_name) REFERENCES public.app_user(name) ON DELETE CASCADE;

ALTER TABLE ONLY public.case_event
    ADD CONSTRAINT case_event_batch_id_fkey FOREIGN KEY (batch_id) REFERENCES public.load_batch(id);

ALTER TABLE ONLY public.case_merge_member
    ADD CONSTRAINT case_merge_member_merge_id_fkey FOREIGN KEY (merge_id) REFERENCES public.case_merge(id);

ALTER TABLE ONLY public.facility
    ADD CONSTRAINT facility_batch_id_fkey FOREIGN KEY (batch_id) REFERENCES public.load_batch(id);

ALTER TABLE ONLY public.grid_neighbour
    ADD CONSTRAINT grid_neighbour_grid_code_fkey FOREIGN KEY (grid_code) REFERENCES public.admin_unit(code) ON DELETE CASCADE;

ALTER TABLE ONLY public.grid_neighbour
    ADD CONSTRAINT grid_neighbour_neighbour_code_fkey FOREIGN KEY (neighbour_code) REFERENCES public.admin_unit(code) ON DELETE CASCADE;

ALTER TABLE ONLY public.grid_piece
    ADD CONSTRAINT grid_piece_grid_code_fkey FOREIGN KEY (grid_code) REFERENCES public.admin_unit(code) ON DELETE CASCADE;

ALTER TABLE ONLY public.grid_worker
    ADD CONSTRAINT grid_worker_batch_id_fkey FOREIGN KEY (batch_id) REFERENCES public.load_batch(id);

ALTER TABLE ONLY public.grid_worker
    ADD CONSTRAINT grid_worker_grid_code_fkey FOREIGN KEY (grid_code) REFERENCES public.admin_unit(code) ON DELETE CASCADE;

ALTER TABLE ONLY public.iot_device
    ADD CONSTRAINT iot_device_batch_id_fkey FOREIGN KEY (batch_id) REFERENCES public.load_batch(id);

ALTER TABLE ONLY public.iot_event
    ADD CONSTRAINT iot_event_batch_id_fkey FOREIGN KEY (batch_id) REFERENCES public.load_batch(id);

ALTER TABLE ONLY public.iot_event
    ADD CONSTRAINT iot_event_device_id_fkey FOREIGN KEY (device_id) REFERENCES public.iot_device(id);

ALTER TABLE ONLY public.rejected_row
    ADD CONSTRAINT rejected_row_batch_id_fkey FOREIGN KEY (batch_id) REFERENCES public.load_batch(id) ON DELETE CASCADE;
