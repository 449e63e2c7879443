-- An interval join of a file with itself (Flink): each payment with the same user's payments
-- of the 10 seconds up to it, itself included. Both sides read the same file, so the join
-- tells its inputs apart by source, not by topic or path.
--   u1 10:00:00 (10)  with u1 10:00:00                -> u1,10,10
--   u2 10:00:01 (20)  with u2 10:00:01                -> u2,20,20
--   u1 10:00:05 (30)  with u1 10:00:00 and 10:00:05   -> u1,30,10  u1,30,30
--   u1 10:00:20 (40)  with u1 10:00:20 (10:00:05 is 15 s before) -> u1,40,40
--   u2 10:00:09 (50)  with u2 10:00:01 and 10:00:09   -> u2,50,20  u2,50,50
-- The line that is not JSON is malformed on each side: counted twice.
CREATE TABLE payments (user_id STRING, amount DOUBLE, paid_at STRING, ts AS TO_TIMESTAMP_LTZ(paid_at),
                       WATERMARK FOR ts AS ts - INTERVAL '5' SECOND)
WITH ('connector'='filesystem', 'path'='file://${CASES}/payments.json', 'format'='json',
      'parallelism'='${PARALLELISM:-1}');
CREATE TABLE out (user_id STRING, amount DOUBLE, earlier DOUBLE, earlier_at TIMESTAMP(3))
WITH ('connector'='filesystem', 'path'='${OUT}', 'format'='csv');
INSERT INTO out
SELECT a.user_id, a.amount, b.amount, b.ts
FROM payments a JOIN payments b
  ON a.user_id = b.user_id AND b.ts BETWEEN a.ts - INTERVAL '10' SECOND AND a.ts;
