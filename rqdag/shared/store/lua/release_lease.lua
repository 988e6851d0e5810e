-- release_lease: hand the lease back at once (clean shutdown), if still held.
-- KEYS[1]  run lease key
-- ARGV[1]  lease value "owner|fence" the caller holds
-- Returns: 1 when released, 0 when it was not held by the caller.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
