CREATE TABLE products (
    product_id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    currency_code TEXT NOT NULL,
    price_units BIGINT NOT NULL,
    price_nanos INTEGER NOT NULL,
    availability TEXT NOT NULL,
    categories_json TEXT NOT NULL,  -- JSON array of strings, in the order sent
    create_us BIGINT NOT NULL,  -- microseconds since the epoch (UTC)
    update_us BIGINT NOT NULL,
    -- Position of the row's last change in the store's change sequence: "every change after N" is a cursor.
    change_seq BIGINT NOT NULL UNIQUE
);
