-- Idempotent initialization, run by start.sh on every start as the superuser
-- over the Unix socket. psql variables (-v): secrets_dir, database, schema,
-- owner_user, app_user, read_only_user, migrator_user, temporal (on/off),
-- temporal_user, temporal_owner, temporal_previous_user (may be empty),
-- metrics (on/off), monitoring_user, pooler (on/off), pooler_auth_user,
-- pooler_roles (the roles the pooler may look up, as an array literal),
-- pooler_schema and pooler_function (the lookup function's schema and name).
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
\set migrator_pw `cat :'secrets_dir'/postgres_app_migrator_pw`

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

-- The migration role logs in, and its sessions in the application database
-- act as the owner from the start (settings below), so whatever a migration
-- tool creates belongs to the owner. NOINHERIT: as itself (after SET ROLE NONE)
-- it holds no privilege, so it can never own anything. It is a member of the
-- owner and of nothing else.
SELECT format('CREATE ROLE %I', :'migrator_user')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'migrator_user') \gexec
ALTER ROLE :"migrator_user" LOGIN NOINHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
    PASSWORD :'migrator_pw';
GRANT :"owner_user" TO :"migrator_user";
SELECT format('REVOKE %I FROM %I', granted.rolname, :'migrator_user')
FROM pg_auth_members m
JOIN pg_roles granted ON granted.oid = m.roleid
JOIN pg_roles member ON member.oid = m.member
WHERE member.rolname = :'migrator_user' AND granted.rolname <> :'owner_user' \gexec

-- Temporal, as the old chart set it up: a NOLOGIN owner of both databases and
-- a LOGIN role that Temporal connects and migrates as. The owner comes first:
-- when one role is both (the single-role model), LOGIN is what stays.
\if :temporal
\set temporal_pw `cat :'secrets_dir'/postgres_temporal_pw`
SELECT DISTINCT format('CREATE ROLE %I', wanted.role)
FROM unnest(ARRAY[:'temporal_owner', :'temporal_user']) AS wanted(role)
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = wanted.role) \gexec
ALTER ROLE :"temporal_owner" NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
    PASSWORD NULL;
ALTER ROLE :"temporal_user" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
    PASSWORD :'temporal_pw';
-- A role that owned the databases before (temporal.previousUsername) hands its
-- objects over below and no longer logs in.
SELECT :'temporal_previous_user' <> '' AS temporal_adopt \gset
\if :temporal_adopt
SELECT format('ALTER ROLE %I NOLOGIN', :'temporal_previous_user')
WHERE EXISTS (SELECT FROM pg_roles WHERE rolname = :'temporal_previous_user') \gexec
\endif
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
-- The pooler's auth role: it logs in only to call the lookup function (below),
-- is a member of nothing and owns nothing.
\if :pooler
\set pooler_auth_pw `cat :'secrets_dir'/postgres_pooler_auth_pw`
SELECT format('CREATE ROLE %I', :'pooler_auth_user')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'pooler_auth_user') \gexec
ALTER ROLE :"pooler_auth_user" LOGIN NOINHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
    PASSWORD :'pooler_auth_pw';
SELECT format('REVOKE %I FROM %I', granted.rolname, :'pooler_auth_user')
FROM pg_auth_members m
JOIN pg_roles granted ON granted.oid = m.roleid
JOIN pg_roles member ON member.oid = m.member
WHERE member.rolname = :'pooler_auth_user' \gexec
\else
-- Pooler turned off: a role left from before can no longer log in.
SELECT format('ALTER ROLE %I NOLOGIN', :'pooler_auth_user')
WHERE EXISTS (SELECT FROM pg_roles WHERE rolname = :'pooler_auth_user') \gexec
\endif
-- Forget the passwords before anything else runs.
\unset superuser_pw
\unset owner_pw
\unset app_pw
\unset read_only_pw
\unset migrator_pw
\unset temporal_pw
\unset monitoring_pw
\unset pooler_auth_pw

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
GRANT CONNECT ON DATABASE :"database" TO :"migrator_user";
\if :pooler
-- The pooler's auth role runs its lookup in the application database (auth_dbname).
GRANT CONNECT ON DATABASE :"database" TO :"pooler_auth_user";
\endif
\if :metrics
-- The exporter connects to the application database, where pg_stat_statements lives.
GRANT CONNECT ON DATABASE :"database" TO :"monitoring_user";
\endif

\if :temporal
SELECT format('CREATE DATABASE %I OWNER %I', wanted.db, :'temporal_owner')
FROM unnest(ARRAY['temporal', 'temporal_visibility']) AS wanted(db)
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = wanted.db) \gexec
ALTER DATABASE temporal OWNER TO :"temporal_owner";
ALTER DATABASE temporal_visibility OWNER TO :"temporal_owner";
REVOKE ALL ON DATABASE temporal FROM PUBLIC;
REVOKE ALL ON DATABASE temporal_visibility FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE temporal, temporal_visibility TO :"temporal_user";
-- The backup job dumps the Temporal databases as the read-only role too.
GRANT CONNECT ON DATABASE temporal, temporal_visibility TO :"read_only_user";
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

-- Existing objects. The application role reads and writes rows and draws
-- sequence values, nothing more: TRUNCATE, REFERENCES and TRIGGER on tables
-- and UPDATE (setval) on sequences belong to migrations. Earlier versions
-- granted them; they are revoked from every object the role does not own
-- (what it owns, it may grant itself anyway).
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA :"schema" TO :"app_user";
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA :"schema" TO :"app_user";
SELECT format('REVOKE %s ON %s %s FROM %I',
              CASE c.relkind WHEN 'S' THEN 'UPDATE' ELSE 'TRUNCATE, REFERENCES, TRIGGER' END,
              CASE c.relkind WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, c.oid::regclass, :'app_user')
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_roles owner_ ON owner_.oid = c.relowner
WHERE n.nspname = :'schema' AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND owner_.rolname <> :'app_user' \gexec
GRANT SELECT ON ALL TABLES IN SCHEMA :"schema" TO :"read_only_user";
GRANT SELECT ON ALL SEQUENCES IN SCHEMA :"schema" TO :"read_only_user";

-- Objects created later by the owner (migrations: the migration role, or the
-- superuser after SET ROLE), by the superuser itself, or by the application
-- role are usable the moment they exist, without a restart.
SELECT format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I GRANT %s ON %s TO %I',
              creator, :'schema', grant_.privileges, grant_.objects, grant_.grantee)
FROM unnest(ARRAY[:'owner_user', 'postgres']) AS creator,
     (VALUES ('SELECT, INSERT, UPDATE, DELETE', 'TABLES', :'app_user'),
             ('USAGE, SELECT', 'SEQUENCES', :'app_user'),
             ('SELECT', 'TABLES', :'read_only_user'),
             ('SELECT', 'SEQUENCES', :'read_only_user')) AS grant_(privileges, objects, grantee) \gexec
SELECT format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I REVOKE %s ON %s FROM %I',
              creator, :'schema', revoke_.privileges, revoke_.objects, :'app_user')
FROM unnest(ARRAY[:'owner_user', 'postgres']) AS creator,
     (VALUES ('TRUNCATE, REFERENCES, TRIGGER', 'TABLES'), ('UPDATE', 'SEQUENCES')) AS revoke_(privileges, objects) \gexec
ALTER DEFAULT PRIVILEGES FOR ROLE :"app_user" IN SCHEMA :"schema"
    GRANT SELECT ON TABLES TO :"read_only_user";
ALTER DEFAULT PRIVILEGES FOR ROLE :"app_user" IN SCHEMA :"schema"
    GRANT SELECT ON SEQUENCES TO :"read_only_user";

ALTER ROLE :"app_user" IN DATABASE :"database" SET search_path = :"schema", public;
ALTER ROLE :"read_only_user" IN DATABASE :"database" SET search_path = :"schema", public;

-- Schema migrations. Every session starts with the schema first on its search
-- path (the database default; the roles below set it too), so unqualified
-- names land there: that covers the superuser, also after SET ROLE owner.
-- public belongs to the superuser: the owner of the database would otherwise
-- own it (through pg_database_owner) and could create there.
ALTER DATABASE :"database" SET search_path = :"schema", public;
ALTER SCHEMA public OWNER TO postgres;
ALTER ROLE :"owner_user" IN DATABASE :"database" SET search_path = :"schema", public;
ALTER ROLE :"migrator_user" IN DATABASE :"database" SET search_path = :"schema", public;
ALTER ROLE :"migrator_user" IN DATABASE :"database" SET role = :'owner_user';

-- The pooler's lookup (PgBouncer's auth_query): the name and SCRAM verifier of
-- one role, answered only for the application's login roles listed in
-- pooler_roles and never for a superuser, replication or BYPASSRLS role. The
-- schema belongs to the superuser and only the auth role may use it; the
-- function runs as its owner (it reads pg_authid) with a fixed search_path.
-- Recreated on every start, so the list follows the values.
\if :pooler
CREATE SCHEMA IF NOT EXISTS :"pooler_schema" AUTHORIZATION postgres;
ALTER SCHEMA :"pooler_schema" OWNER TO postgres;
REVOKE ALL ON SCHEMA :"pooler_schema" FROM PUBLIC;
GRANT USAGE ON SCHEMA :"pooler_schema" TO :"pooler_auth_user";
SELECT format($create$
CREATE OR REPLACE FUNCTION %I.%I(p_user text, OUT usename name, OUT passwd text)
RETURNS SETOF record LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $body$
    SELECT a.rolname, a.rolpassword FROM pg_catalog.pg_authid a
    WHERE a.rolname = p_user AND a.rolname = ANY (%L::name[])
      AND a.rolcanlogin AND NOT a.rolsuper AND NOT a.rolreplication AND NOT a.rolbypassrls
      AND a.rolpassword LIKE 'SCRAM-SHA-256$%%'
$body$$create$, :'pooler_schema', :'pooler_function', :'pooler_roles') \gexec
ALTER FUNCTION :"pooler_schema".:"pooler_function"(text) OWNER TO postgres;
REVOKE ALL ON FUNCTION :"pooler_schema".:"pooler_function"(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION :"pooler_schema".:"pooler_function"(text) TO :"pooler_auth_user";
\endif

CREATE EXTENSION IF NOT EXISTS btree_gin SCHEMA public;
CREATE EXTENSION IF NOT EXISTS pg_stat_statements SCHEMA public;

-- Inside each Temporal database: init-temporal.sql, once per database.
\if :temporal
\set temporal_db temporal
\ir init-temporal.sql
\set temporal_db temporal_visibility
\ir init-temporal.sql
\endif
