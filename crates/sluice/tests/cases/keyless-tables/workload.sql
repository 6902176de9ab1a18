INSERT INTO uk VALUES ('d', 4);
UPDATE uk SET v = 20 WHERE code = 'b';
UPDATE uk SET code = 'cc' WHERE code = 'c';
DELETE FROM uk WHERE code = 'a';
UPDATE named SET v = 'z' WHERE a = 1 AND b = 2;
INSERT INTO named VALUES (2, 1, 'w');
-- One of two equal rows changes, one of two equal rows goes; look-alikes stay.
UPDATE bag SET a = 5 WHERE s = 'x' AND s = BINARY 'x' LIMIT 1;
DELETE FROM bag WHERE a IS NULL LIMIT 1;
UPDATE bag SET s = 'lower' WHERE s = BINARY 'X';
UPDATE bag SET f = 0.25 WHERE s = BINARY 'x ';
INSERT INTO bag VALUES (2, 'ü', 3.4e38, -1.5e308, '[1, 2]', '1999-12-31 23:59:59.999');
DELETE FROM bag WHERE a = 2 LIMIT 1;
UPDATE bag SET j = '{"k": 2}' WHERE a = 5;
