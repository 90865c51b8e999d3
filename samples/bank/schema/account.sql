-- The account service's database. Besides this table it needs undo_log
-- (`xact sql undo-log`: AT mode) and tcc_fence_log (`xact sql tcc-fence`:
-- the fence of its saga steps).
CREATE TABLE IF NOT EXISTS account (
  id      VARCHAR(32) NOT NULL PRIMARY KEY,
  balance BIGINT      NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

INSERT IGNORE INTO account (id, balance) VALUES ('alice', 100), ('bob', 100);
