-- The append-only triggers of 0003 fire for each row, and TRUNCATE visits no
-- row: `TRUNCATE access_log_patients`, or `TRUNCATE access_log CASCADE`, would
-- have emptied the access log. A statement-level trigger on each table
-- refuses TRUNCATE with the same error (SQLSTATE P0001, "the access log is
-- append-only"); TRUNCATE ... CASCADE fires the triggers of every table it
-- would empty. (SQLite has no TRUNCATE: its `DELETE FROM` with no WHERE
-- clause fires the row triggers of 0003 whenever the table has triggers.)
DROP TRIGGER IF EXISTS access_log_refuses_truncate ON access_log;
CREATE TRIGGER access_log_refuses_truncate
    BEFORE TRUNCATE ON access_log
    FOR EACH STATEMENT EXECUTE FUNCTION access_log_is_append_only();
DROP TRIGGER IF EXISTS access_log_patients_refuses_truncate ON access_log_patients;
CREATE TRIGGER access_log_patients_refuses_truncate
    BEFORE TRUNCATE ON access_log_patients
    FOR EACH STATEMENT EXECUTE FUNCTION access_log_is_append_only();
