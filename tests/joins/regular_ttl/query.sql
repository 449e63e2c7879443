-- Flink's regular join of two streams, without a time bound: allowed because the session
-- bounds the state ('table.exec.state.ttl': each row is kept an hour of processing time,
-- far longer than this run). Every pair with equal keys joins, however far apart in
-- time; the shipments carry no event time at all.
--   o1 book  with post            -> o1,book,post
--   o2 lamp  with dhl and fedex   -> o2,lamp,dhl  o2,lamp,fedex
--   o3 desk  never shipped, o4 never ordered: nothing (INNER)
SET 'table.exec.state.ttl' = '1 h';
CREATE TABLE orders (order_id STRING, item STRING, ordered_at STRING, ts AS TO_TIMESTAMP_LTZ(ordered_at),
                     WATERMARK FOR ts AS ts - INTERVAL '5' SECOND)
WITH ('connector'='filesystem', 'path'='file://${CASES}/orders.json', 'format'='json',
      'parallelism'='${PARALLELISM:-1}');
CREATE TABLE shipments (order_id STRING, carrier STRING)
WITH ('connector'='filesystem', 'path'='file://${CASES}/shipments.json', 'format'='json');
CREATE TABLE out (order_id STRING, item STRING, carrier STRING)
WITH ('connector'='filesystem', 'path'='${OUT}', 'format'='csv');
INSERT INTO out
SELECT o.order_id, o.item, s.carrier FROM orders o JOIN shipments s ON o.order_id = s.order_id;
