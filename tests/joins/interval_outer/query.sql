-- A FULL OUTER interval join (Flink): each ad impression with the clicks on the same ad
-- within 10 seconds after it. Both files are read two lines per micro-batch and a few rows
-- come out of order (by at most 4 s, inside the 5 s watermark delay, so none is late); with
-- two workers the micro-batches alternate between two splits and the rows are split by ad.
--   a1 10:00:00 with click a1 10:00:04                  -> a1,00,a1,04
--   a2 10:00:03: its click at 10:00:14 is 11 s later     -> a2,03,,  (padded)
--   a1 10:00:06 with click a1 10:00:15 (10:00:04 is before it) -> a1,06,a1,15
--   a3 10:00:02 (out of order) with click a3 10:00:09     -> a3,02,a3,09
--   a2 10:00:20 with click a2 10:00:27 (out of order)    -> a2,20,a2,27
--   a4 10:00:21: no click                                -> a4,21,,  (padded)
--   click a2 10:00:14, click a5 10:00:30: no impression -> ,,a2,14  ,,a5,30  (padded)
-- The padded rows come out when the watermark closes their interval (the last ones at the
-- end of the files, whose final watermark closes every interval).
CREATE TABLE impressions (ad_id STRING, shown_at STRING, ts AS TO_TIMESTAMP_LTZ(shown_at),
                          WATERMARK FOR ts AS ts - INTERVAL '5' SECOND)
WITH ('connector'='filesystem', 'path'='file://${CASES}/impressions.json', 'format'='json',
      'scan.batch.max-rows'='2', 'parallelism'='${PARALLELISM:-1}');
CREATE TABLE clicks (ad_id STRING, clicked_at STRING, ts AS TO_TIMESTAMP_LTZ(clicked_at),
                     WATERMARK FOR ts AS ts - INTERVAL '5' SECOND)
WITH ('connector'='filesystem', 'path'='file://${CASES}/clicks.json', 'format'='json',
      'scan.batch.max-rows'='2');
CREATE TABLE out (shown_ad STRING, shown TIMESTAMP_LTZ(3), clicked_ad STRING, clicked TIMESTAMP_LTZ(3))
WITH ('connector'='filesystem', 'path'='${OUT}', 'format'='csv');
INSERT INTO out
SELECT i.ad_id, i.ts, c.ad_id, c.ts
FROM impressions i FULL JOIN clicks c
  ON i.ad_id = c.ad_id AND c.ts BETWEEN i.ts AND i.ts + INTERVAL '10' SECOND;
