-- A late row in an interval join (Flink): each impression with the clicks on the same ad
-- within 10 seconds after it. Both files are read two lines per micro-batch, the impressions
-- first in each; the join's watermark is the lower of the two inputs' (5 s delay each):
--   micro-batch 1: impressions a1 10:00:00, a2 10:00:03; clicks a1 10:00:04, a2 10:00:06
--                  -> a1,00,a1,04  a2,03,a2,06; watermarks 09:59:58 and 10:00:01: 09:59:58
--   micro-batch 2: impressions a1 10:00:20, a3 10:00:21; clicks a1 10:00:22, a3 10:00:23
--                  -> a1,20,a1,22  a3,21,a3,23; watermarks 10:00:16 and 10:00:18: 10:00:16
--   micro-batch 3: impression a2 10:00:05 is 11 s behind the watermark: late, dropped and
--                  counted (it would have joined the click at 10:00:06); a4 10:00:25 with
--                  click a4 10:00:26 -> a4,25,a4,26
-- No parallelism file: with two workers the splits' watermarks differ, so which rows are
-- late differs too (as for windows).
CREATE TABLE impressions (ad_id STRING, shown_at STRING, ts AS TO_TIMESTAMP_LTZ(shown_at),
                          WATERMARK FOR ts AS ts - INTERVAL '5' SECOND)
WITH ('connector'='filesystem', 'path'='file://${CASES}/impressions_late.json', 'format'='json',
      'scan.batch.max-rows'='2', 'parallelism'='1');
CREATE TABLE clicks (ad_id STRING, clicked_at STRING, ts AS TO_TIMESTAMP_LTZ(clicked_at),
                     WATERMARK FOR ts AS ts - INTERVAL '5' SECOND)
WITH ('connector'='filesystem', 'path'='file://${CASES}/clicks_late.json', 'format'='json',
      'scan.batch.max-rows'='2');
CREATE TABLE out (shown_ad STRING, shown TIMESTAMP_LTZ(3), clicked_ad STRING, clicked TIMESTAMP_LTZ(3))
WITH ('connector'='filesystem', 'path'='${OUT}', 'format'='csv');
INSERT INTO out
SELECT i.ad_id, i.ts, c.ad_id, c.ts
FROM impressions i JOIN clicks c
  ON i.ad_id = c.ad_id AND c.ts BETWEEN i.ts AND i.ts + INTERVAL '10' SECOND;
