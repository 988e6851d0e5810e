-- release_lease: hand the lease back at once (clean shutdown), if still held.
-- KEYS[1]  lease_key   run lease key
-- ARGV[1]  lease       lease value "owner|fence" the caller holds
-- Returns: 1 when released, 0 when it was not held by the caller.
local lease_key = KEYS[1]
local lease = ARGV[1]

if redis.call('GET', lease_key) == lease then
  redis.call('DEL', lease_key)
  return 1
end
return 0
