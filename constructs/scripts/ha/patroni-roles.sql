-- Re-sync the passwords of Patroni's replication and rewind roles from the
-- Secret files (Patroni sets them only when it bootstraps the cluster). Run by
-- patroni-hook.sh on the primary; psql variables: secrets_dir,
-- replication_user, rewind_user. A role Patroni has not created yet (during
-- post_bootstrap it creates them right after the hook) is left alone.
SET log_statement = 'none';
SET log_min_duration_statement = -1;
SET log_min_error_statement = panic;
SET pg_stat_statements.track_utility = off;
SET client_min_messages = warning;

\set replication_pw `cat :'secrets_dir'/postgres_replication_pw`
\set rewind_pw `cat :'secrets_dir'/postgres_rewind_pw`
SELECT format('ALTER ROLE %I PASSWORD %L', rolname,
              CASE rolname WHEN :'replication_user' THEN :'replication_pw' ELSE :'rewind_pw' END)
FROM pg_roles WHERE rolname IN (:'replication_user', :'rewind_user') \gexec
\unset replication_pw
\unset rewind_pw
