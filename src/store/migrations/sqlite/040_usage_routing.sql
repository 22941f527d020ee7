-- 040_usage_routing.sql — per-attempt routing facts in the usage log: the user route and
-- route channel that served the attempt (NULL = automatic route), the failure kind the
-- gateway classified (connect, timeout, server_error, rate_limit, quota, auth,
-- client_error; '' on success) and the estimated cost of a successful attempt (model
-- price × tokens, per-call price, or the manual unit cost; NULL = unknown).
ALTER TABLE usage_logs ADD COLUMN route_id INTEGER;
ALTER TABLE usage_logs ADD COLUMN route_channel_id INTEGER;
ALTER TABLE usage_logs ADD COLUMN failure_kind TEXT NOT NULL DEFAULT '';
ALTER TABLE usage_logs ADD COLUMN estimated_cost REAL;
