-- 020_routes.sql — the routing engine: user routes (exact names, globs, re: patterns,
-- display aliases, explicit groups), their channels, the unit-cost and weight inputs of
-- the weighted strategy, and the runtime health saved across restarts. Automatic routes
-- (one per discovered model) are not stored: they are derived from account_models each
-- time the routing snapshot is built.

CREATE TABLE routes (
    id               INTEGER PRIMARY KEY,
    model_pattern    TEXT NOT NULL CHECK (length(model_pattern) BETWEEN 1 AND 512),
    display_name     TEXT,
    route_mode       TEXT NOT NULL DEFAULT 'pattern'
                     CHECK (route_mode IN ('pattern', 'explicit_group')),
    model_mapping    TEXT CHECK (model_mapping IS NULL OR json_valid(model_mapping)),
    routing_strategy TEXT NOT NULL DEFAULT 'weighted'
                     CHECK (routing_strategy IN ('weighted', 'round_robin', 'stable_first')),
    enabled          INTEGER NOT NULL DEFAULT 1,
    created_at       TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at       TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

-- Members of an explicit group route.
CREATE TABLE route_group_sources (
    group_route_id  INTEGER NOT NULL REFERENCES routes (id) ON DELETE CASCADE,
    source_route_id INTEGER NOT NULL REFERENCES routes (id) ON DELETE CASCADE,
    PRIMARY KEY (group_route_id, source_route_id)
) WITHOUT ROWID;

-- The channels of a user route: a credential (account; a token id later), the upstream
-- model name it is asked for (NULL = the route's model), priority (lower first), weight.
CREATE TABLE route_channels (
    id           INTEGER PRIMARY KEY,
    route_id     INTEGER NOT NULL REFERENCES routes (id) ON DELETE CASCADE,
    account_id   INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    token_id     INTEGER,
    source_model TEXT,
    priority     INTEGER NOT NULL DEFAULT 0,
    weight       INTEGER NOT NULL DEFAULT 10 CHECK (weight BETWEEN 0 AND 1000000),
    enabled      INTEGER NOT NULL DEFAULT 1,
    created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX route_channels_route_id ON route_channels (route_id);

-- Weighted-strategy inputs: a manual unit cost per account (used when no model price is
-- known) and a site weight.
ALTER TABLE accounts ADD COLUMN unit_cost REAL;
ALTER TABLE sites ADD COLUMN global_weight REAL NOT NULL DEFAULT 1 CHECK (global_weight > 0);

-- Runtime health saved periodically and at stop (cooldowns as wall-clock ms). scope:
-- 0 site, 1 credential (account), 2 channel (account + upstream model).
CREATE TABLE routing_health (
    scope                  INTEGER NOT NULL CHECK (scope IN (0, 1, 2)),
    ref_id                 INTEGER NOT NULL,
    model                  TEXT NOT NULL DEFAULT '',
    site_id                INTEGER NOT NULL DEFAULT 0,
    streak                 INTEGER NOT NULL DEFAULT 0,
    cooldown_until_ms      INTEGER NOT NULL DEFAULT 0,
    cooldown_kind          INTEGER NOT NULL DEFAULT 0,
    cooldown_hard          INTEGER NOT NULL DEFAULT 0,
    last_failure_ms        INTEGER NOT NULL DEFAULT 0,
    latency_ms             INTEGER NOT NULL DEFAULT 0,
    successes              INTEGER NOT NULL DEFAULT 0,
    failures               INTEGER NOT NULL DEFAULT 0,
    updated_at             INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (scope, ref_id, model)
) WITHOUT ROWID;
