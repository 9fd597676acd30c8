-- Each API process keeps the stored answers it served in memory
-- (internal/api's answer cache) and serves them without a query while it
-- listens on the channel 'stevedore_answer_changed' (postgres.AnswerChannel):
-- every change to what a GET or a warm POST of a manifest answers sends its
-- digest there, in the writing transaction, so it is delivered when that
-- commits, whichever process or path wrote it. What a GET answers is a
-- report_body row joined to its index_report row (state, scanner_state,
-- next_retry, updated_at), so a change to either table's rows notifies:
-- reports written, re-indexed, retried, deleted (with their manifests, by
-- cascade), answers stored or replaced. A TRUNCATE sends an empty digest:
-- everything kept goes.

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION stevedore_answer_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM pg_notify('stevedore_answer_changed', '');
        RETURN NULL;
    END IF;
    IF TG_OP <> 'INSERT' THEN
        PERFORM pg_notify('stevedore_answer_changed', OLD.manifest_hash);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        PERFORM pg_notify('stevedore_answer_changed', NEW.manifest_hash);
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER index_report_answer_changed AFTER INSERT OR UPDATE OR DELETE ON index_report
    FOR EACH ROW EXECUTE FUNCTION stevedore_answer_changed();
CREATE TRIGGER index_report_answer_truncated AFTER TRUNCATE ON index_report
    FOR EACH STATEMENT EXECUTE FUNCTION stevedore_answer_changed();
CREATE TRIGGER report_body_answer_changed AFTER INSERT OR UPDATE OR DELETE ON report_body
    FOR EACH ROW EXECUTE FUNCTION stevedore_answer_changed();
CREATE TRIGGER report_body_answer_truncated AFTER TRUNCATE ON report_body
    FOR EACH STATEMENT EXECUTE FUNCTION stevedore_answer_changed();

-- +goose Down
DROP TRIGGER report_body_answer_truncated ON report_body;
DROP TRIGGER report_body_answer_changed ON report_body;
DROP TRIGGER index_report_answer_truncated ON index_report;
DROP TRIGGER index_report_answer_changed ON index_report;
DROP FUNCTION stevedore_answer_changed();
