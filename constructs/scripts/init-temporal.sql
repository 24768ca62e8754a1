-- One Temporal database (psql variable temporal_db), included by init.sql with
-- its variables: the owner owns the database, the Temporal role creates its
-- tables in public and uses them, the read-only role dumps everything.

\connect :"temporal_db"
SET client_min_messages = warning;

CREATE EXTENSION IF NOT EXISTS btree_gin SCHEMA public;

-- Temporal migrates (CREATE) and runs (USAGE) in public; nobody else creates there.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE, CREATE ON SCHEMA public TO :"temporal_user";

-- The role that owned the database before hands its tables to the Temporal
-- role. Run on every start: once nothing is left it does nothing.
\if :temporal_adopt
SELECT format('REASSIGN OWNED BY %I TO %I', :'temporal_previous_user', :'temporal_user')
WHERE EXISTS (SELECT FROM pg_roles WHERE rolname = :'temporal_previous_user') \gexec
\endif

-- Existing objects, and objects the owner creates later.
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER
    ON ALL TABLES IN SCHEMA public TO :"temporal_user";
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO :"temporal_user";
ALTER DEFAULT PRIVILEGES FOR ROLE :"temporal_owner" IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON TABLES TO :"temporal_user";
ALTER DEFAULT PRIVILEGES FOR ROLE :"temporal_owner" IN SCHEMA public
    GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO :"temporal_user";

-- The backup job reads every table, whichever of the two roles created it.
GRANT USAGE ON SCHEMA public TO :"read_only_user";
GRANT SELECT ON ALL TABLES IN SCHEMA public TO :"read_only_user";
GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO :"read_only_user";
SELECT format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA public GRANT SELECT ON %s TO %I',
              creator, objects, :'read_only_user')
FROM (SELECT DISTINCT unnest(ARRAY[:'temporal_owner', :'temporal_user'])) AS c(creator),
     unnest(ARRAY['TABLES', 'SEQUENCES']) AS objects \gexec
