-- A consent to the same app, patient and scope renews the newest live approval of that
-- grant: find it without reading all of the participant's approvals.
CREATE INDEX approvals_by_grant ON approvals (username, client_id, patient_id, scope, created);
