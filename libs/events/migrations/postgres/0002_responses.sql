-- What a Search/Recommend response served (libs.domain.ServedResponse as JSON), for on-demand explanations;
-- kept an hour (services.gateway.on_demand.RESPONSE_TTL_S).
CREATE TABLE responses (
    response_id TEXT PRIMARY KEY,
    created_us BIGINT NOT NULL,  -- whole microseconds since the epoch (UTC)
    body TEXT NOT NULL
);
CREATE INDEX responses_created ON responses (created_us);
