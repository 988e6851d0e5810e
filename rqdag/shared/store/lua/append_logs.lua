-- append_logs: add lines a task wrote (logging, stdout, stderr) to its run's logs stream.
-- Bounded: at most the lines of one batch (the worker sends a few hundred at a time).
-- A run that is gone gets no stream (no key outlives its run); a new stream takes the
-- run's expiry, so a line written after the run finished expires with it.
-- KEYS[1]  meta_key  run meta hash
-- KEYS[2]  logs_key  run logs stream
-- ARGV[1]  run_lines the stream is trimmed to about this many lines (the run's limit)
-- ARGV[2..] the lines, 7 values each: task, attempt, at, stream, level, logger, message
-- Returns: the number of lines written; -1 when the run is gone (nothing written).
local meta_key = KEYS[1]
local logs_key = KEYS[2]
local run_lines = ARGV[1]
local first_line = 2
local width = 7

if redis.call('EXISTS', meta_key) == 0 then
  return -1
end
local written = 0
for i = first_line, #ARGV - width + 1, width do
  redis.call('XADD', logs_key, 'MAXLEN', '~', run_lines, '*',
    'task', ARGV[i], 'attempt', ARGV[i + 1], 'at', ARGV[i + 2], 'stream', ARGV[i + 3],
    'level', ARGV[i + 4], 'logger', ARGV[i + 5], 'message', ARGV[i + 6])
  written = written + 1
end
if written > 0 and redis.call('PTTL', logs_key) == -1 then
  local ttl = redis.call('PTTL', meta_key)
  if ttl > 0 then
    redis.call('PEXPIRE', logs_key, ttl)
  end
end
return written
