-- Seed 003, "Existing Tables (E-commerce Data)": demo data the AFS agents optimise queries against.
-- Deliberately NO index on orders (user_id, status) and none on the foreign-key columns: the
-- document keeps them missing as the optimisation demo (sequential scans on status filtering,
-- slow joins with users). Do not "fix" this here; an AFS proposal is supposed to.
-- Timestamps are TIMESTAMPTZ where the document says TIMESTAMP (see README, deviations).

CREATE TABLE users (
    id SERIAL PRIMARY KEY,
    email VARCHAR(255) NOT NULL,
    created_at TIMESTAMPTZ DEFAULT now(),
    CONSTRAINT uniq_users_email UNIQUE (email)
);

CREATE TABLE orders (
    id SERIAL PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id),
    total NUMERIC(10, 2) NOT NULL,
    status VARCHAR(20) NOT NULL,
    created_at TIMESTAMPTZ DEFAULT now()
);

CREATE TABLE payments (
    id SERIAL PRIMARY KEY,
    order_id INTEGER NOT NULL REFERENCES orders (id),
    amount NUMERIC(10, 2) NOT NULL,
    status VARCHAR(20) NOT NULL,
    created_at TIMESTAMPTZ DEFAULT now()
);

COMMENT ON TABLE orders IS
    'E-commerce demo data. Intentionally has no (user_id, status) index: the AFS optimisation demo.';
