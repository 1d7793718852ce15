-- A commit of one event that claims reservations runs as one statement
-- (infra/src/store/postgres.rs): the claims, then the event and its outbox
-- row. A claim another holder has must undo the whole statement, and only
-- an error does that; this function raises it. The commit then runs again
-- as a transaction, which names the key that was taken.
CREATE OR REPLACE FUNCTION baton_all_claimed(claimed bigint, wanted integer)
    RETURNS boolean
    LANGUAGE plpgsql
AS
$$
BEGIN
    IF claimed < wanted THEN
        RAISE EXCEPTION 'a reservation is held by another record' USING ERRCODE = 'BT001';
    END IF;
    RETURN true;
END
$$;
