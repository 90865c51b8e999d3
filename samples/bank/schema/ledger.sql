-- The ledger service's database. Besides this table it needs undo_log
-- (`xact sql undo-log`: AT mode) and tcc_fence_log (`xact sql tcc-fence`:
-- the fence of its TCC resource and saga steps).
CREATE TABLE IF NOT EXISTS entry (
  id           BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
  xid          VARCHAR(128) NOT NULL,
  branch_id    BIGINT       NOT NULL DEFAULT 0 COMMENT 'TCC and saga: the branch; AT: 0',
  mode         VARCHAR(8)   NOT NULL COMMENT 'at, tcc, saga',
  from_account VARCHAR(32)  NOT NULL,
  to_account   VARCHAR(32)  NOT NULL,
  amount       BIGINT       NOT NULL,
  state        VARCHAR(8)   NOT NULL COMMENT 'pending, posted, voided',
  UNIQUE KEY uk_entry_branch (xid, branch_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
