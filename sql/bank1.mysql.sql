-- bank1: Zhang San's bank, on MariaDB/MySQL (InnoDB: only InnoDB takes part in XA).
-- Dropped and re-created from scratch on every run of scripts/demo.sh:
--   mariadb -h127.0.0.1 -P13306 -udtx -pdtx < sql/bank1.mysql.sql
-- The CHECK makes an overdraft fail, which the demo's failure scenarios rely on
-- (MariaDB enforces CHECK constraints since 10.2, MySQL since 8.0.16).
DROP DATABASE IF EXISTS bank1;
CREATE DATABASE bank1 CHARACTER SET utf8mb4;
USE bank1;

CREATE TABLE account_info (
  id               BIGINT       NOT NULL AUTO_INCREMENT,
  account_name     VARCHAR(100) NULL,
  account_no       VARCHAR(100) NULL,
  account_password VARCHAR(100) NULL,
  account_balance  DOUBLE       NULL,
  PRIMARY KEY (id),
  CONSTRAINT account_balance_not_negative CHECK (account_balance >= 0)
) ENGINE = InnoDB;

-- Transaction numbers already applied, for idempotent (TCC-style) handlers.
CREATE TABLE de_duplication (
  tx_no       VARCHAR(64) NOT NULL,
  create_time DATETIME    NULL,
  PRIMARY KEY (tx_no)
) ENGINE = InnoDB;

INSERT INTO account_info (id, account_name, account_no, account_password, account_balance)
VALUES (2, 'Zhang San', '1', '', 10000);
