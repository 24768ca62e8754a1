-- Idempotent initialization, run by start.sh on every start as the superuser
-- over the Unix socket. psql variables (-v): secrets_dir, database, schema,
-- owner_user, app_user, read_only_user, temporal (on/off), temporal_user,
-- metrics (on/off), monitoring_user.
-- Creates what is missing, resets attributes and grants, and re-syncs every
-- role's password from the Secret files (rotation = new Secret + restart).

-- Password statements must leave no trace: not in the server log (even with
-- log_statement = all or a failing statement), not in pg_stat_statements.
SET log_statement = 'none';
SET log_min_duration_statement = -1;
SET log_min_error_statement = panic;
SET pg_stat_statements.track_utility = off;
SET client_min_messages = warning;

-- Passwords are read from the files by psql itself, never from a command line.
\set superuser_pw `cat :'secrets_dir'/postgres_password`
\set owner_pw `cat :'secrets_dir'/postgres_app_owner_pw`
\set app_pw `cat :'secrets_dir'/postgres_app_user_pw`
\set read_only_pw `cat :'secrets_dir'/postgres_app_ro_pw`

-- Roles ---------------------------------------------------------------------

SELECT format('CREATE ROLE %I', wanted.role)
FROM unnest(ARRAY[:'owner_user', :'app_user', :'read_only_user']) AS wanted(role)
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = wanted.role) \gexec

ALTER ROLE postgres PASSWORD :'superuser_pw';
-- The owner never logs in: it only owns. Its password is kept in sync in case
-- an operator enables LOGIN for a migration.
ALTER ROLE :"owner_user" NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
    PASSWORD :'owner_pw';
ALTER ROLE :"app_user" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
    PASSWORD :'app_pw';
ALTER ROLE :"read_only_user" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
    PASSWORD :'read_only_pw';
-- Every transaction of the read-only role is read-only unless it asks
-- otherwise; its grants (SELECT only) refuse writes either way.
ALTER ROLE :"read_only_user" SET default_transaction_read_only = on;

\if :temporal
\set temporal_pw `cat :'secrets_dir'/postgres_temporal_pw`
SELECT format('CREATE ROLE %I', :'temporal_user')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'temporal_user') \gexec
ALTER ROLE :"temporal_user" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
    PASSWORD :'temporal_pw';
\endif
-- The metrics exporter's role: it logs in, is a member of pg_monitor and of
-- nothing else, so it reads statistics and settings but no table data.
\if :metrics
\set monitoring_pw `cat :'secrets_dir'/postgres_monitoring_pw`
SELECT format('CREATE ROLE %I', :'monitoring_user')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'monitoring_user') \gexec
ALTER ROLE :"monitoring_user" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
    PASSWORD :'monitoring_pw';
GRANT pg_monitor TO :"monitoring_user";
SELECT format('REVOKE %I FROM %I', granted.rolname, :'monitoring_user')
FROM pg_auth_members m
JOIN pg_roles granted ON granted.oid = m.roleid
JOIN pg_roles member ON member.oid = m.member
WHERE member.rolname = :'monitoring_user' AND granted.rolname <> 'pg_monitor' \gexec
\else
-- Metrics turned off: a role left from before can no longer log in.
SELECT format('ALTER ROLE %I NOLOGIN', :'monitoring_user')
WHERE EXISTS (SELECT FROM pg_roles WHERE rolname = :'monitoring_user') \gexec
\endif
-- Forget the passwords before anything else runs.
\unset superuser_pw
\unset owner_pw
\unset app_pw
\unset read_only_pw
\unset temporal_pw
\unset monitoring_pw

-- Databases -----------------------------------------------------------------

-- The maintenance databases are the superuser's alone: by default every role
-- may connect to them and create temporary tables there.
REVOKE CONNECT, TEMPORARY ON DATABASE postgres, template1 FROM PUBLIC;

SELECT format('CREATE DATABASE %I OWNER %I', :'database', :'owner_user')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'database') \gexec
ALTER DATABASE :"database" OWNER TO :"owner_user";
REVOKE ALL ON DATABASE :"database" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"database" TO :"app_user";
GRANT CONNECT ON DATABASE :"database" TO :"read_only_user";
\if :metrics
-- The exporter connects to the application database, where pg_stat_statements lives.
GRANT CONNECT ON DATABASE :"database" TO :"monitoring_user";
\endif

\if :temporal
SELECT format('CREATE DATABASE %I OWNER %I', wanted.db, :'temporal_user')
FROM unnest(ARRAY['temporal', 'temporal_visibility']) AS wanted(db)
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = wanted.db) \gexec
ALTER DATABASE temporal OWNER TO :"temporal_user";
ALTER DATABASE temporal_visibility OWNER TO :"temporal_user";
REVOKE ALL ON DATABASE temporal FROM PUBLIC;
REVOKE ALL ON DATABASE temporal_visibility FROM PUBLIC;
\endif

-- Inside the application database --------------------------------------------

\connect :"database"
SET client_min_messages = warning;

-- Nobody but the owner creates in public (the default since PostgreSQL 15; a
-- database restored from an older dump may still allow it).
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

CREATE SCHEMA IF NOT EXISTS :"schema" AUTHORIZATION :"owner_user";
ALTER SCHEMA :"schema" OWNER TO :"owner_user";
REVOKE ALL ON SCHEMA :"schema" FROM PUBLIC;
GRANT USAGE, CREATE ON SCHEMA :"schema" TO :"app_user";
GRANT USAGE ON SCHEMA :"schema" TO :"read_only_user";

-- Existing objects.
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER
    ON ALL TABLES IN SCHEMA :"schema" TO :"app_user";
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA :"schema" TO :"app_user";
GRANT SELECT ON ALL TABLES IN SCHEMA :"schema" TO :"read_only_user";
GRANT SELECT ON ALL SEQUENCES IN SCHEMA :"schema" TO :"read_only_user";

-- Objects created later by the owner (migrations) or by the application role.
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner_user" IN SCHEMA :"schema"
    GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON TABLES TO :"app_user";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner_user" IN SCHEMA :"schema"
    GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO :"app_user";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner_user" IN SCHEMA :"schema"
    GRANT SELECT ON TABLES TO :"read_only_user";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner_user" IN SCHEMA :"schema"
    GRANT SELECT ON SEQUENCES TO :"read_only_user";
ALTER DEFAULT PRIVILEGES FOR ROLE :"app_user" IN SCHEMA :"schema"
    GRANT SELECT ON TABLES TO :"read_only_user";
ALTER DEFAULT PRIVILEGES FOR ROLE :"app_user" IN SCHEMA :"schema"
    GRANT SELECT ON SEQUENCES TO :"read_only_user";

ALTER ROLE :"app_user" IN DATABASE :"database" SET search_path = :"schema", public;
ALTER ROLE :"read_only_user" IN DATABASE :"database" SET search_path = :"schema", public;

CREATE EXTENSION IF NOT EXISTS btree_gin SCHEMA public;
CREATE EXTENSION IF NOT EXISTS pg_stat_statements SCHEMA public;

-- The backup job dumps the Temporal databases as the read-only role too: it
-- may connect and read every table the Temporal role creates there.
\if :temporal
GRANT CONNECT ON DATABASE temporal, temporal_visibility TO :"read_only_user";
\connect temporal
SET client_min_messages = warning;
GRANT USAGE ON SCHEMA public TO :"read_only_user";
GRANT SELECT ON ALL TABLES IN SCHEMA public TO :"read_only_user";
GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO :"read_only_user";
ALTER DEFAULT PRIVILEGES FOR ROLE :"temporal_user" IN SCHEMA public GRANT SELECT ON TABLES TO :"read_only_user";
ALTER DEFAULT PRIVILEGES FOR ROLE :"temporal_user" IN SCHEMA public GRANT SELECT ON SEQUENCES TO :"read_only_user";
\connect temporal_visibility
SET client_min_messages = warning;
GRANT USAGE ON SCHEMA public TO :"read_only_user";
GRANT SELECT ON ALL TABLES IN SCHEMA public TO :"read_only_user";
GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO :"read_only_user";
ALTER DEFAULT PRIVILEGES FOR ROLE :"temporal_user" IN SCHEMA public GRANT SELECT ON TABLES TO :"read_only_user";
ALTER DEFAULT PRIVILEGES FOR ROLE :"temporal_user" IN SCHEMA public GRANT SELECT ON SEQUENCES TO :"read_only_user";
\endif
