INSERT INTO j SELECT 100 + n, d FROM docs;
UPDATE j SET doc = (SELECT d FROM docs WHERE n = 1) WHERE id = 0;
