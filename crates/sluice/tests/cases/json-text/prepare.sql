CREATE TABLE j (id INT PRIMARY KEY, doc JSON);
CREATE TABLE docs (n INT PRIMARY KEY, d LONGTEXT);
INSERT INTO docs VALUES
  (0, '{"b": 1, "a": 18446744073709551616}'),
  (1, '{"price":123456789012345678901234567890.123456789012345678901234567890,"tiny":1e-400}'),
  (2, '[[[[[[[[[[{"x":[{"y":{"z":[1,2,{"w":null}]}}]}]]]]]]]]]]'),
  (3, '{"a":1,"A":2,"a ":3,"\\u0061b":4,"a":5}'),
  (4, '{"s":"\\u00e9\\ud83d\\ude00 caf\\u00e9","raw":"é😀","esc":"\\"\\\\\\/\\b\\f\\n\\r\\t"}'),
  (5, '{ "x" :  [ 1 ,2 ] , "y":-0.0000000000000000000000000001 }'),
  (6, '12345678901234567890123456789012345678901234567890');
INSERT INTO j SELECT n, d FROM docs;
