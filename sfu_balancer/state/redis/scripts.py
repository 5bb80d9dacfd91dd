"""The Lua scripts that change a room's placement in the Redis store.

Every change to a room's placement is one of these scripts (claim, remove, compare-and-delete,
re-assert): the room's bridge set is derived from its records inside the script, so no instance
ever reads it and writes it in two steps (LiveKit's unlocked HGET/HSET). Each script also keeps
the ``tenants`` counts and the ``rooms`` set in step with the records it changes.
"""

# KEYS: room hash, rooms set, tenants hash.
# ARGV: participant, record JSON, bridge, seen bridges (JSON list), room, tenant or "".
# 1 = recorded; 0 = the room's bridges changed since the decision (nothing changed);
# -1 = the room key is not a hash (corrupt: nothing changed).
CLAIM = """
local ok, flat = pcall(redis.call, 'HGETALL', KEYS[1])
if not ok then return -1 end
local current, n, old = {}, 0, nil
for i = 1, #flat, 2 do
  local good, rec = pcall(cjson.decode, flat[i + 1])
  if good and type(rec) == 'table' and type(rec.b) == 'string' then
    if flat[i] == ARGV[1] then
      old = rec
    elseif not current[rec.b] then
      current[rec.b] = true
      n = n + 1
    end
  end
end
if not current[ARGV[3]] then
  local seen = cjson.decode(ARGV[4])
  if #seen ~= n then return 0 end
  for _, b in ipairs(seen) do
    if not current[b] then return 0 end
  end
end
if old and type(old.t) == 'string' then
  local okd, left = pcall(redis.call, 'HINCRBY', KEYS[3], old.t, -1)
  if okd and left <= 0 then redis.call('HDEL', KEYS[3], old.t) end
end
if ARGV[6] ~= '' then pcall(redis.call, 'HINCRBY', KEYS[3], ARGV[6], 1) end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
pcall(redis.call, 'SADD', KEYS[2], ARGV[5])
return 1
"""

# KEYS: room hash, rooms set, tenants hash. ARGV: participant, room, owner or "".
# Removes the record (only if its owner is ARGV[3], when given: compare-and-delete) and
# returns its old value; nil when absent or owned by someone else.
REMOVE = """
local ok, v = pcall(redis.call, 'HGET', KEYS[1], ARGV[1])
if not ok or not v then return false end
local good, rec = pcall(cjson.decode, v)
local parsed = good and type(rec) == 'table'
if ARGV[3] ~= '' and not (parsed and rec.i == ARGV[3]) then return false end
redis.call('HDEL', KEYS[1], ARGV[1])
if parsed and type(rec.t) == 'string' then
  local okd, left = pcall(redis.call, 'HINCRBY', KEYS[3], rec.t, -1)
  if okd and left <= 0 then redis.call('HDEL', KEYS[3], rec.t) end
end
if redis.call('EXISTS', KEYS[1]) == 0 then pcall(redis.call, 'SREM', KEYS[2], ARGV[2]) end
return v
"""

# KEYS: room hash, rooms set, tenants hash.
# ARGV: participant, record JSON, room, instance, tenant or "".
# Writes this instance's record back unless another instance owns that participant now
# (it rejoined there): 1 written, 0 someone else's, -1 corrupt key.
ASSERT = """
local ok, v = pcall(redis.call, 'HGET', KEYS[1], ARGV[1])
if not ok then return -1 end
if v then
  local good, rec = pcall(cjson.decode, v)
  if good and type(rec) == 'table' then
    if rec.i ~= ARGV[4] then return 0 end
    if type(rec.t) == 'string' then
      local okd, left = pcall(redis.call, 'HINCRBY', KEYS[3], rec.t, -1)
      if okd and left <= 0 then redis.call('HDEL', KEYS[3], rec.t) end
    end
  end
end
if ARGV[5] ~= '' then pcall(redis.call, 'HINCRBY', KEYS[3], ARGV[5], 1) end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
pcall(redis.call, 'SADD', KEYS[2], ARGV[3])
return 1
"""
