CREATE TABLE uk (code VARCHAR(10) NOT NULL, v INT, UNIQUE KEY code (code));
CREATE TABLE named (a INT NOT NULL, b INT NOT NULL, v VARCHAR(10));
CREATE TABLE bag (a INT, s VARCHAR(10) COLLATE utf8mb4_general_ci, f FLOAT, d DOUBLE,
  j JSON, t DATETIME(3), KEY a (a));
INSERT INTO uk VALUES ('a', 1), ('b', 2), ('c', 3);
INSERT INTO named VALUES (1, 1, 'x'), (1, 2, 'y');
INSERT INTO bag VALUES (1, 'x', 0.1, 0.1, '{"k": 1}', '2024-01-01 00:00:00.001'),
  (1, 'x', 0.1, 0.1, '{"k": 1}', '2024-01-01 00:00:00.001'),
  (1, 'X', 0.1, 0.1, '{"k": 1}', '2024-01-01 00:00:00.001'),
  (1, 'x ', 0.1, 0.1, '{"k": 1}', '2024-01-01 00:00:00.001'),
  (NULL, NULL, NULL, NULL, NULL, NULL), (NULL, NULL, NULL, NULL, NULL, NULL),
  (2, 'ü', 3.4e38, -1.5e308, '[1, 2]', '1999-12-31 23:59:59.999');
