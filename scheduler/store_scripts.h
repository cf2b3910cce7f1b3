/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store_scripts.h - the Lua scripts of the scheduler's EAS store (store.c),
 * on the key layout of proto/redis_scripts.h. House rule, as there: every
 * script runs the commands that can fail (XINFO on a key of the wrong type,
 * XADD out of id order, a malformed id) before its first lasting write, so
 * a failed script leaves nothing half done, and a script repeated after a
 * lost reply does nothing twice (except put_sink, which adds a second frame).
 */
#ifndef SCH_STORE_SCRIPTS_H
#define SCH_STORE_SCRIPTS_H

/* groups(k): the names of the consumer groups of stream k ({} when missing). */
#define SCH_LUA_HELPERS                                                                   \
  "local function groups(k)\n"                                                            \
  "  local out = {}\n"                                                                    \
  "  if redis.call('EXISTS', k) == 0 then return out end\n"                               \
  "  for _, g in ipairs(redis.call('XINFO', 'GROUPS', k)) do\n"                           \
  "    for i = 1, #g, 2 do\n"                                                             \
  "      if g[i] == 'name' then table.insert(out, g[i + 1]) end\n"                        \
  "    end\n"                                                                             \
  "  end\n"                                                                               \
  "  return out\n"                                                                        \
  "end\n"

/* KEYS: the queue's streams. ARGV: entry ids (at most a few hundred).
 * Acks the ids in every group of each stream (the workers' and the EAS
 * groups: nothing stays pending for an entry that is gone, so depth's
 * waiting = XLEN - pending stays exact), then deletes them.
 * Returns the number of entries deleted. */
#define SCH_LUA_REMOVE                                                                    \
  SCH_LUA_HELPERS                                                                         \
  "local gs = {}\n"                                                                       \
  "for k = 1, #KEYS do gs[k] = groups(KEYS[k]) end\n"                                     \
  "local n = 0\n"                                                                         \
  "for k = 1, #KEYS do\n"                                                                 \
  "  for _, g in ipairs(gs[k]) do redis.call('XACK', KEYS[k], g, unpack(ARGV)) end\n"     \
  "  n = n + redis.call('XDEL', KEYS[k], unpack(ARGV))\n"                                 \
  "end\n"                                                                                 \
  "return n\n"

/* KEYS: the queue's streams. ARGV: min id ("0-N", N >= 1).
 * Acks every pending entry below N in every group, then trims the streams
 * to MINID (exact). Returns the number of entries deleted. */
#define SCH_LUA_TRUNCATE                                                                  \
  SCH_LUA_HELPERS                                                                         \
  "local gs = {}\n"                                                                       \
  "for k = 1, #KEYS do gs[k] = groups(KEYS[k]) end\n"                                     \
  "local n = 0\n"                                                                         \
  "for k = 1, #KEYS do\n"                                                                 \
  "  for _, g in ipairs(gs[k]) do\n"                                                      \
  "    local ids\n"                                                                       \
  "    repeat\n"                                                                          \
  "      ids = {}\n"                                                                      \
  "      for _, e in ipairs(redis.call('XPENDING', KEYS[k], g, '-', '(' .. ARGV[1], 500)) do\n" \
  "        table.insert(ids, e[1])\n"                                                     \
  "      end\n"                                                                           \
  "      if #ids > 0 then redis.call('XACK', KEYS[k], g, unpack(ids)) end\n"              \
  "    until #ids < 500\n"                                                                \
  "  end\n"                                                                               \
  "  if redis.call('EXISTS', KEYS[k]) == 1 then\n"                                        \
  "    n = n + redis.call('XTRIM', KEYS[k], 'MINID', ARGV[1])\n"                          \
  "  end\n"                                                                               \
  "end\n"                                                                                 \
  "return n\n"

/* KEYS: out, out:seq. ARGV: maxlen, request_id, data, tags JSON ("" = none).
 * The XADD (which fails on a wrong id order) comes before the counter's INCR.
 * Returns the index. */
#define SCH_LUA_PUT_SINK                                                                  \
  "local idx = tonumber(redis.call('GET', KEYS[2]) or '0') + 1\n"                         \
  "local f = {'request_id', ARGV[2], 'data', ARGV[3]}\n"                                  \
  "if ARGV[4] ~= '' then table.insert(f, 'tags') table.insert(f, ARGV[4]) end\n"          \
  "redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '0-' .. idx, unpack(f))\n"         \
  "redis.call('INCR', KEYS[2])\n"                                                         \
  "return idx\n"

/* KEYS: the queue's streams. ARGV: group, idle_ms, consumer, then entry ids.
 * With a consumer: every entry pending on it; with "" : the given ids,
 * whoever holds them. Each is XCLAIMed to its holder with its idle time set
 * to idle_ms (the visibility timeout), so the next XAUTOCLAIM of any
 * consumer of the group takes it at once. Returns the number released. */
#define SCH_LUA_RELEASE                                                                   \
  SCH_LUA_HELPERS                                                                         \
  "local g, idle, c = ARGV[1], ARGV[2], ARGV[3]\n"                                        \
  "local todo = {}\n"                                                                     \
  "for k = 1, #KEYS do\n"                                                                 \
  "  todo[k] = {}\n"                                                                      \
  "  local has = false\n"                                                                 \
  "  for _, name in ipairs(groups(KEYS[k])) do if name == g then has = true end end\n"    \
  "  if has and c ~= '' then\n"                                                           \
  "    local start = '-'\n"                                                               \
  "    local p\n"                                                                         \
  "    repeat\n"                                                                          \
  "      p = redis.call('XPENDING', KEYS[k], g, start, '+', 500, c)\n"                    \
  "      for _, e in ipairs(p) do table.insert(todo[k], {e[1], c}) end\n"                 \
  "      if #p > 0 then start = '(' .. p[#p][1] end\n"                                    \
  "    until #p < 500\n"                                                                  \
  "  elseif has then\n"                                                                   \
  "    for i = 4, #ARGV do\n"                                                             \
  "      local p = redis.call('XPENDING', KEYS[k], g, ARGV[i], ARGV[i], 1)\n"             \
  "      if #p > 0 then table.insert(todo[k], {p[1][1], p[1][2]}) end\n"                  \
  "    end\n"                                                                             \
  "  end\n"                                                                               \
  "end\n"                                                                                 \
  "local n = 0\n"                                                                         \
  "for k = 1, #KEYS do\n"                                                                 \
  "  for _, e in ipairs(todo[k]) do\n"                                                    \
  "    redis.call('XCLAIM', KEYS[k], g, e[2], 0, e[1], 'IDLE', idle, 'JUSTID')\n"         \
  "    n = n + 1\n"                                                                       \
  "  end\n"                                                                               \
  "end\n"                                                                                 \
  "return n\n"

/* KEYS: a stream. ARGV: start id (inclusive, or "(id"), batch, limit
 * (0: count only), request_id ("" = any), tags JSON object ("" = any).
 * Reads one batch from start and filters it here, so no payload crosses
 * the wire unless it matches. The tags "requestId" and "lastCode" match the
 * request_id and last_code fields; others the entry's tags JSON.
 * Returns {next start ("" at the end), matches, matching entries}. */
#define SCH_LUA_SCAN                                                                      \
  "local want = nil\n"                                                                    \
  "if ARGV[5] ~= '' then want = cjson.decode(ARGV[5]) end\n"                              \
  "local batch, limit = tonumber(ARGV[2]), tonumber(ARGV[3])\n"                           \
  "local function field(f, name)\n"                                                       \
  "  for i = 1, #f, 2 do if f[i] == name then return f[i + 1] end end\n"                  \
  "  return nil\n"                                                                        \
  "end\n"                                                                                 \
  "local function match(f)\n"                                                             \
  "  if ARGV[4] ~= '' and field(f, 'request_id') ~= ARGV[4] then return false end\n"      \
  "  if not want then return true end\n"                                                  \
  "  local tags = nil\n"                                                                  \
  "  local tj = field(f, 'tags')\n"                                                       \
  "  if tj then\n"                                                                        \
  "    local ok, v = pcall(cjson.decode, tj)\n"                                           \
  "    if ok and type(v) == 'table' then tags = v end\n"                                  \
  "  end\n"                                                                               \
  "  for k, v in pairs(want) do\n"                                                        \
  "    local have = nil\n"                                                                \
  "    if k == 'requestId' then have = field(f, 'request_id')\n"                          \
  "    elseif k == 'lastCode' and field(f, 'last_code') then have = field(f, 'last_code')\n" \
  "    elseif tags then have = tags[k] end\n"                                             \
  "    if have == nil or type(have) ~= 'string' or have ~= tostring(v) then\n"            \
  "      return false\n"                                                                  \
  "    end\n"                                                                             \
  "  end\n"                                                                               \
  "  return true\n"                                                                       \
  "end\n"                                                                                 \
  "local r = redis.call('XRANGE', KEYS[1], ARGV[1], '+', 'COUNT', batch)\n"               \
  "local out, cnt = {}, 0\n"                                                              \
  "for _, e in ipairs(r) do\n"                                                            \
  "  if match(e[2]) then\n"                                                               \
  "    cnt = cnt + 1\n"                                                                   \
  "    if limit > 0 then\n"                                                               \
  "      table.insert(out, e)\n"                                                          \
  "      if cnt >= limit then return {'(' .. e[1], cnt, out} end\n"                       \
  "    end\n"                                                                             \
  "  end\n"                                                                               \
  "end\n"                                                                                 \
  "local nxt = ''\n"                                                                      \
  "if #r >= batch then nxt = '(' .. r[#r][1] end\n"                                       \
  "return {nxt, cnt, out}\n"

/* KEYS: a stream. ARGV: start, end (XRANGE bounds, "(" for exclusive).
 * Returns the number of entries in the range: O(entries), counted here in
 * batches, nothing crosses the wire. */
#define SCH_LUA_COUNT_RANGE                                                               \
  "local n, start = 0, ARGV[1]\n"                                                         \
  "local r\n"                                                                             \
  "repeat\n"                                                                              \
  "  r = redis.call('XRANGE', KEYS[1], start, ARGV[2], 'COUNT', 1000)\n"                  \
  "  n = n + #r\n"                                                                        \
  "  if #r > 0 then start = '(' .. r[#r][1] end\n"                                        \
  "until #r < 1000\n"                                                                     \
  "return n\n"

/* KEYS: the queue's streams. ARGV: group, consumer.
 * Deletes the consumer from the group on every stream where it holds
 * nothing pending (XGROUP DELCONSUMER would drop its pending entries), in
 * one step so that a reconnect cannot slip in between. Returns how many. */
#define SCH_LUA_FORGET                                                                    \
  "local n = 0\n"                                                                         \
  "for k = 1, #KEYS do\n"                                                                 \
  "  local ok, p = pcall(redis.call, 'XPENDING', KEYS[k], ARGV[1], '-', '+', 1, ARGV[2])\n" \
  "  if ok and #p == 0 then\n"                                                            \
  "    n = n + redis.call('XGROUP', 'DELCONSUMER', KEYS[k], ARGV[1], ARGV[2])\n"          \
  "  end\n"                                                                               \
  "end\n"                                                                                 \
  "return n\n"

#endif
