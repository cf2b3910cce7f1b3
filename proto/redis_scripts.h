/* SPDX-License-Identifier: Apache-2.0 */
/*
 * redis_scripts.h - the Lua scripts that make each Redis Streams operation
 * atomic (DESIGN.md, "Delivery semantics"). Key layout per env, all keys in
 * one cluster hash slot thanks to the {env} tag:
 *   tripgen:{env}:in, :in:prio  input streams, ids 0-<n> from :seq
 *   tripgen:{env}:out           sink stream, ids 0-<n> from :out:seq
 *   tripgen:{env}:dlq           dead letters, ids 0-<n> from :dlq:seq
 *   tripgen:{env}:delayed       sorted set of retries by due time (ms)
 *   tripgen:{env}:result:{rid}  hash generation -> final result JSON
 * An acked input entry is deleted at once (XACK + XDEL in one script), so
 * the input streams hold only waiting and pending entries and
 * waiting = XLEN - pending stays exact after deletes.
 */
#ifndef TG_REDIS_SCRIPTS_H
#define TG_REDIS_SCRIPTS_H

/* Shared helpers, prepended to the scripts that publish or ack. Redis does
 * not undo the writes a script made before a command failed, so every
 * script runs the commands that can fail (XADD: id order, WRONGTYPE) before
 * its first write that matters. done(): whether a final result of this or a
 * newer generation is stored. */
#define TG_LUA_HELPERS                                                                    \
  "local function done(kres, gen)\n"                                                      \
  "  for _, g in ipairs(redis.call('HKEYS', kres)) do\n"                                  \
  "    if tonumber(g) >= tonumber(gen) then return true end\n"                            \
  "  end\n"                                                                               \
  "  return false\n"                                                                      \
  "end\n"                                                                                 \
  "local function publish(kres, kout, kseq, gen, json, rid, ttl, maxlen, lastcode)\n"     \
  "  if redis.call('HEXISTS', kres, gen) == 1 then return 0 end\n"                        \
  "  local idx = redis.call('INCR', kseq)\n"                                              \
  "  if lastcode ~= '0' then\n"                                                           \
  "    redis.call('XADD', kout, 'MAXLEN', '~', maxlen, '0-' .. idx, 'request_id', rid,\n" \
  "      'generation', gen, 'last_code', lastcode, 'result', json)\n"                     \
  "  else\n"                                                                              \
  "    redis.call('XADD', kout, 'MAXLEN', '~', maxlen, '0-' .. idx, 'request_id', rid,\n" \
  "      'generation', gen, 'result', json)\n"                                            \
  "  end\n"                                                                               \
  "  redis.call('HSET', kres, gen, json)\n"                                               \
  "  redis.call('PEXPIRE', kres, ttl)\n"                                                  \
  "  return idx\n"                                                                        \
  "end\n"                                                                                 \
  "local function ack(kin, group, id)\n"                                                  \
  "  if id ~= '' then\n"                                                                  \
  "    redis.call('XACK', kin, group, id)\n"                                              \
  "    redis.call('XDEL', kin, id)\n"                                                     \
  "  end\n"                                                                               \
  "end\n"                                                                                 \
  "local function held_by(kin, group, id, consumer)\n"                                    \
  "  if id == '' then return 1 end\n"                                                     \
  "  local p = redis.call('XPENDING', kin, group, id, id, 1)\n"                           \
  "  if #p == 0 then return 0 end\n"                                                      \
  "  if p[1][2] == consumer then return 1 end\n"                                          \
  "  return -1\n"                                                                         \
  "end\n"                                                                                 \
  "local function renew(kin, group, id, consumer)\n"                                      \
  "  if held_by(kin, group, id, consumer) ~= 1 then return 0 end\n"                       \
  "  redis.call('XCLAIM', kin, group, consumer, 0, id, 'JUSTID')\n"                       \
  "  return 1\n"                                                                          \
  "end\n"

/* KEYS: seq, target stream, in, in:prio, idempotency key.
 * ARGV: cap, request_id, job, enqueued_at, tags JSON ("" = none), data ("" = none),
 *       idempotency ttl ms ("0" = no idempotency), invalid reason ("" = none).
 * Returns {index, request_id, repeated}: a put repeated within the ttl returns
 * the first put's index and request_id and enqueues nothing. */
#define TG_LUA_PUT                                                                        \
  "if ARGV[7] ~= '0' then\n"                                                              \
  "  local prev = redis.call('GET', KEYS[5])\n"                                           \
  "  if prev then\n"                                                                      \
  "    local sp = string.find(prev, ' ', 1, true)\n"                                      \
  "    return {tonumber(string.sub(prev, 1, sp - 1)), string.sub(prev, sp + 1), 1}\n"     \
  "  end\n"                                                                               \
  "end\n"                                                                                 \
  "if redis.call('XLEN', KEYS[3]) + redis.call('XLEN', KEYS[4]) >= tonumber(ARGV[1]) then\n" \
  "  return redis.error_reply('QUEUEFULL the input queue holds its cap of ' .. ARGV[1] ..\n" \
  "    ' entries')\n"                                                                     \
  "end\n"                                                                                 \
  "local idx = redis.call('INCR', KEYS[1])\n"                                             \
  "local fields = {'request_id', ARGV[2], 'job', ARGV[3], 'enqueued_at', ARGV[4]}\n"      \
  "if ARGV[5] ~= '' then table.insert(fields, 'tags') table.insert(fields, ARGV[5]) end\n" \
  "if ARGV[6] ~= '' then table.insert(fields, 'data') table.insert(fields, ARGV[6]) end\n" \
  "if ARGV[8] ~= '' then table.insert(fields, 'invalid') table.insert(fields, ARGV[8]) end\n" \
  "redis.call('XADD', KEYS[2], '0-' .. idx, unpack(fields))\n"                            \
  "if ARGV[7] ~= '0' then\n"                                                              \
  "  redis.call('SET', KEYS[5], idx .. ' ' .. ARGV[2], 'PX', ARGV[7])\n"                  \
  "end\n"                                                                                 \
  "return {idx, ARGV[2], 0}\n"

/* KEYS: result hash, out, out:seq, input stream.
 * ARGV: group, entry id, generation, result, request_id, ttl, maxlen, last_code. */
#define TG_LUA_COMPLETE                                                                   \
  TG_LUA_HELPERS                                                                          \
  "local idx = publish(KEYS[1], KEYS[2], KEYS[3], ARGV[3], ARGV[4], ARGV[5], ARGV[6],\n"  \
  "  ARGV[7], ARGV[8])\n"                                                                 \
  "ack(KEYS[4], ARGV[1], ARGV[2])\n"                                                      \
  "return idx\n"

/* KEYS: as COMPLETE, then dlq, dlq:seq.
 * ARGV: as COMPLETE, then payload, dead_at, deliveries, index, dlq max length
 * (the dead letters are trimmed to about that many, oldest first), consumer.
 * An entry no longer pending is left alone (-1: a repeat), as is one that
 * another consumer holds now (-2: it runs there); one whose final result
 * exists is only acked. */
#define TG_LUA_DEAD_LETTER                                                                \
  TG_LUA_HELPERS                                                                          \
  "local h = held_by(KEYS[4], ARGV[1], ARGV[2], ARGV[14])\n"                               \
  "if h == 0 then return -1 end\n"                                                        \
  "if h == -1 then return -2 end\n"                                                       \
  "if done(KEYS[1], ARGV[3]) then\n"                                                      \
  "  ack(KEYS[4], ARGV[1], ARGV[2])\n"                                                    \
  "  return 0\n"                                                                          \
  "end\n"                                                                                 \
  "local d = redis.call('INCR', KEYS[6])\n"                                               \
  "redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[13], '0-' .. d, 'request_id', ARGV[5],\n" \
  "  'generation', ARGV[3],\n"                                                           \
  "  'job', ARGV[9], 'result', ARGV[4], 'dead_at', ARGV[10], 'deliveries', ARGV[11],\n"  \
  "  'index', ARGV[12])\n"                                                                \
  "local idx = publish(KEYS[1], KEYS[2], KEYS[3], ARGV[3], ARGV[4], ARGV[5], ARGV[6],\n"  \
  "  ARGV[7], ARGV[8])\n"                                                                 \
  "ack(KEYS[4], ARGV[1], ARGV[2])\n"                                                      \
  "return idx\n"

/* KEYS: result hash, input stream. ARGV: group, entry id, generation.
 * Acks an entry whose final result (this or a newer generation) is stored;
 * returns 1 then, 0 when there is none (the job must run). */
#define TG_LUA_ACK_IF_DONE                                                                \
  TG_LUA_HELPERS                                                                          \
  "if not done(KEYS[1], ARGV[3]) then return 0 end\n"                                     \
  "ack(KEYS[2], ARGV[1], ARGV[2])\n"                                                      \
  "return 1\n"

/* KEYS: input stream, delayed. ARGV: group, entry id, due_ms, member, consumer.
 * Returns 1 when scheduled; 0 when the entry is no longer pending (a repeat
 * after a lost reply); -1 when another consumer holds it now (it runs there). */
#define TG_LUA_RETRY_LATER                                                                \
  TG_LUA_HELPERS                                                                          \
  "local h = held_by(KEYS[1], ARGV[1], ARGV[2], ARGV[5])\n"                                \
  "if h ~= 1 then return h end\n"                                                         \
  "redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])\n"                                       \
  "ack(KEYS[1], ARGV[1], ARGV[2])\n"                                                      \
  "return 1\n"

/* KEYS: delayed, seq, in, in:prio. ARGV: now_ms, max.
 * Members are "<p|n>\t<request_id>\t<enqueued_at_ms>\t<job JSON>". */
#define TG_LUA_PROMOTE_DUE                                                                \
  "local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0,\n"       \
  "  tonumber(ARGV[2]))\n"                                                                \
  "for _, m in ipairs(due) do\n"                                                          \
  "  local a = string.find(m, '\\t', 3, true)\n"                                          \
  "  local b = string.find(m, '\\t', a + 1, true)\n"                                      \
  "  local stream = KEYS[3]\n"                                                            \
  "  if string.sub(m, 1, 1) == 'p' then stream = KEYS[4] end\n"                           \
  "  local idx = redis.call('INCR', KEYS[2])\n"                                           \
  "  redis.call('XADD', stream, '0-' .. idx, 'request_id', string.sub(m, 3, a - 1),\n"    \
  "    'job', string.sub(m, b + 1), 'enqueued_at', string.sub(m, a + 1, b - 1))\n"        \
  "  redis.call('ZREM', KEYS[1], m) -- only once the job is back in a stream\n"           \
  "end\n"                                                                                 \
  "return #due\n"

/* KEYS: in:prio, in. ARGV: group, consumer, min_idle_ms, max, n, then the
 * ids this consumer runs (the first n of in:prio, the rest of in): their
 * idle time is reset first (if still this consumer's; JUSTID: no delivery
 * counted), in the same atomic step, so none of them is reclaimed.
 * Returns {stream number (1 prio, 2 normal), id, deliveries, fields} per entry. */
#define TG_LUA_RECLAIM                                                                    \
  TG_LUA_HELPERS                                                                          \
  "local out = {}\n"                                                                      \
  "local n_prio = tonumber(ARGV[5])\n"                                                    \
  "for i = 6, #ARGV do\n"                                                                 \
  "  local k = 2\n"                                                                       \
  "  if i - 5 <= n_prio then k = 1 end\n"                                                 \
  "  renew(KEYS[k], ARGV[1], ARGV[i], ARGV[2])\n"                                         \
  "end\n"                                                                                 \
  "local left = tonumber(ARGV[4])\n"                                                      \
  "for k = 1, 2 do\n"                                                                     \
  "  local cursor = '0-0'\n"                                                              \
  "  repeat\n"                                                                            \
  "    local r = redis.call('XAUTOCLAIM', KEYS[k], ARGV[1], ARGV[2], ARGV[3], cursor,\n"  \
  "      'COUNT', left)\n"                                                                \
  "    cursor = r[1]\n"                                                                   \
  "    for _, e in ipairs(r[2]) do\n"                                                     \
  "      local p = redis.call('XPENDING', KEYS[k], ARGV[1], e[1], e[1], 1)\n"             \
  "      local cnt = 1\n"                                                                 \
  "      if p[1] then cnt = p[1][4] end\n"                                                \
  "      table.insert(out, {k, e[1], cnt, e[2]})\n"                                       \
  "      left = left - 1\n"                                                               \
  "    end\n"                                                                             \
  "  until cursor == '0-0' or left <= 0\n"                                                \
  "  if left <= 0 then break end\n"                                                       \
  "end\n"                                                                                 \
  "return out\n"

/* KEYS: in, in:prio, delayed, dlq, workers. ARGV: group, active since (ms).
 * Returns {waiting, waiting_priority, pending, delayed, dead, oldest waiting
 * enqueued_at (0: none), active workers}. The oldest waiting entry is the
 * first one after the group's last-delivered id. */
#define TG_LUA_DEPTH                                                                      \
  "local function pend(k)\n"                                                              \
  "  local r = redis.pcall('XPENDING', k, ARGV[1])\n"                                     \
  "  if type(r) == 'table' and r.err == nil then return r[1] end\n"                       \
  "  return 0\n"                                                                          \
  "end\n"                                                                                 \
  "local function oldest(k)\n"                                                            \
  "  local gs = redis.pcall('XINFO', 'GROUPS', k)\n"                                      \
  "  if type(gs) ~= 'table' or gs.err then return 0 end\n"                                \
  "  for _, g in ipairs(gs) do\n"                                                         \
  "    local f = {}\n"                                                                    \
  "    for i = 1, #g, 2 do f[g[i]] = g[i + 1] end\n"                                      \
  "    if f['name'] == ARGV[1] then\n"                                                    \
  "      local e = redis.call('XRANGE', k, '(' .. f['last-delivered-id'], '+', 'COUNT', 1)\n" \
  "      if #e == 0 then return 0 end\n"                                                  \
  "      for i = 1, #e[1][2], 2 do\n"                                                     \
  "        if e[1][2][i] == 'enqueued_at' then return tonumber(e[1][2][i + 1]) end\n"     \
  "      end\n"                                                                           \
  "      return 0\n"                                                                      \
  "    end\n"                                                                             \
  "  end\n"                                                                               \
  "  return 0\n"                                                                          \
  "end\n"                                                                                 \
  "local pi, pp = pend(KEYS[1]), pend(KEYS[2])\n"                                         \
  "local wi = redis.call('XLEN', KEYS[1]) - pi\n"                                         \
  "local wp = redis.call('XLEN', KEYS[2]) - pp\n"                                         \
  "if wi < 0 then wi = 0 end\n"                                                           \
  "if wp < 0 then wp = 0 end\n"                                                           \
  "local oi, op = oldest(KEYS[1]), oldest(KEYS[2])\n"                                     \
  "if oi == 0 or (op ~= 0 and op < oi) then oi = op end\n"                                \
  "return {wi + wp, wp, pi + pp, redis.call('ZCARD', KEYS[3]), redis.call('XLEN', KEYS[4]),\n" \
  "  oi, redis.call('ZCOUNT', KEYS[5], ARGV[2], '+inf')}\n"

/* KEYS: in:prio, in. ARGV: group, parked consumer, min idle ms, max to move,
 * max_deliveries, scan cursor per stream ("-" = from the start), scan limit.
 * Moves entries idle >= min idle from any consumer but the parked one to
 * it (JUSTID: the count grows only when a worker claims them). Entries
 * already delivered max_deliveries times are claimed with their fields (and
 * their delivery count) for the caller to dead-letter. Returns {parked, {{k, id,
 * count, fields}...}, next cursor prio, next cursor normal}. */
#define TG_LUA_PARK_STALE                                                                 \
  "local parked, dead, left = 0, {}, tonumber(ARGV[4])\n"                                 \
  "local cursors = {ARGV[6], ARGV[7]}\n"                                                   \
  "for k = 1, 2 do\n"                                                                     \
  "  local p = redis.call('XPENDING', KEYS[k], ARGV[1], 'IDLE', ARGV[3], cursors[k], '+',\n" \
  "    tonumber(ARGV[8]))\n"                                                              \
  "  for _, e in ipairs(p) do\n"                                                          \
  "    if left <= 0 then break end\n"                                                     \
  "    cursors[k] = '(' .. e[1]\n"                                                        \
  "    if e[2] ~= ARGV[2] then\n"                                                         \
  "      if e[4] >= tonumber(ARGV[5]) then\n"                                             \
  "        local c = redis.call('XCLAIM', KEYS[k], ARGV[1], ARGV[2], ARGV[3], e[1])\n"    \
  "        if c[1] then table.insert(dead, {k, e[1], e[4], c[1][2]}) end\n"           \
  "      else\n"                                                                          \
  "        redis.call('XCLAIM', KEYS[k], ARGV[1], ARGV[2], ARGV[3], e[1], 'JUSTID')\n"    \
  "        parked = parked + 1\n"                                                         \
  "      end\n"                                                                           \
  "      left = left - 1\n"                                                               \
  "    end\n"                                                                             \
  "  end\n"                                                                               \
  "  if #p < tonumber(ARGV[8]) and left > 0 then cursors[k] = '-' end\n"                  \
  "end\n"                                                                                 \
  "return {parked, dead, cursors[1], cursors[2]}\n"

/* KEYS: in:prio, in. ARGV: group, parked consumer, this consumer, max.
 * Claims up to max parked entries for this consumer (a delivery: the count
 * grows). Returns {k, id, count, fields} per entry, as TG_LUA_RECLAIM. */
#define TG_LUA_CLAIM_PARKED                                                               \
  "local out, left = {}, tonumber(ARGV[4])\n"                                             \
  "for k = 1, 2 do\n"                                                                     \
  "  if left <= 0 then break end\n"                                                       \
  "  local p = redis.call('XPENDING', KEYS[k], ARGV[1], '-', '+', left, ARGV[2])\n"       \
  "  for _, e in ipairs(p) do\n"                                                          \
  "    local c = redis.call('XCLAIM', KEYS[k], ARGV[1], ARGV[3], 0, e[1])\n"              \
  "    if c[1] then\n"                                                                    \
  "      table.insert(out, {k, e[1], e[4] + 1, c[1][2]})\n"                               \
  "      left = left - 1\n"                                                               \
  "    end\n"                                                                             \
  "  end\n"                                                                               \
  "end\n"                                                                                 \
  "return out\n"

/* KEYS: in:prio, in, workers. ARGV: group, idle ms, parked consumer,
 * forget heartbeats before (ms). Removes consumers idle longer than idle ms
 * that own no pending entry (checked and removed in one step, so no entry
 * is delivered to a consumer in between). Returns how many names went. */
#define TG_LUA_PRUNE_CONSUMERS                                                            \
  "local names, stay, at = {}, {}, {{}, {}}\n"                                             \
  "for k = 1, 2 do\n"                                                                     \
  "  local cs = redis.pcall('XINFO', 'CONSUMERS', KEYS[k], ARGV[1])\n"                    \
  "  if type(cs) == 'table' and cs.err == nil then\n"                                     \
  "    for _, c in ipairs(cs) do\n"                                                       \
  "      local f = {}\n"                                                                  \
  "      for i = 1, #c, 2 do f[c[i]] = c[i + 1] end\n"                                    \
  "      if not at[1][f['name']] and not at[2][f['name']] then\n"                         \
  "        table.insert(names, f['name'])\n"                                              \
  "      end\n"                                                                           \
  "      at[k][f['name']] = true\n"                                                       \
  "      if f['pending'] > 0 or f['idle'] <= tonumber(ARGV[2]) or f['name'] == ARGV[3] then\n" \
  "        stay[f['name']] = true\n"                                                      \
  "      end\n"                                                                           \
  "    end\n"                                                                             \
  "  end\n"                                                                               \
  "end\n"                                                                                 \
  "local n = 0\n"                                                                         \
  "for _, name in ipairs(names) do\n"                                                     \
  "  if not stay[name] then\n"                                                            \
  "    for k = 1, 2 do\n"                                                                 \
  "      if at[k][name] then redis.call('XGROUP', 'DELCONSUMER', KEYS[k], ARGV[1], name) end\n" \
  "    end\n"                                                                             \
  "    n = n + 1\n"                                                                       \
  "  end\n"                                                                               \
  "end\n"                                                                                 \
  "redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. ARGV[4])\n"                     \
  "return n\n"

/* KEYS: lease. ARGV: holder, ms. Takes a free lease or renews one's own;
 * returns 1 when the holder holds it now. */
#define TG_LUA_LEASE                                                                      \
  "local v = redis.call('GET', KEYS[1])\n"                                                \
  "if not v then\n"                                                                       \
  "  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])\n"                                \
  "  return 1\n"                                                                          \
  "elseif v == ARGV[1] then\n"                                                            \
  "  redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"                                           \
  "  return 1\n"                                                                          \
  "end\n"                                                                                 \
  "return 0\n"

/* KEYS: lease. ARGV: holder. Deletes the lease only if the holder holds it. */
#define TG_LUA_LEASE_RELEASE                                                              \
  "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end\n" \
  "return 0\n"

/* KEYS: dlq, seq, target stream, in, in:prio. ARGV: dead-letter id, cap,
 * request_id, job, enqueued_at. Moves a dead letter back to the input (its
 * job already rewritten by the caller); -1 when it is gone. */
#define TG_LUA_DLQ_REQUEUE                                                                \
  "if #redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1]) == 0 then return -1 end\n"         \
  "if redis.call('XLEN', KEYS[4]) + redis.call('XLEN', KEYS[5]) >= tonumber(ARGV[2]) then\n" \
  "  return redis.error_reply('QUEUEFULL the input queue holds its cap of ' .. ARGV[2] ..\n" \
  "    ' entries')\n"                                                                     \
  "end\n"                                                                                 \
  "local idx = redis.call('INCR', KEYS[2])\n"                                             \
  "redis.call('XADD', KEYS[3], '0-' .. idx, 'request_id', ARGV[3], 'job', ARGV[4],\n"     \
  "  'enqueued_at', ARGV[5])\n"                                                           \
  "redis.call('XDEL', KEYS[1], ARGV[1])\n"                                                \
  "return idx\n"

/* KEYS: input stream. ARGV: group, consumer, entry id.
 * Resets the idle time only while this consumer still owns the entry
 * (XCLAIM alone would take it back from whoever reclaimed it). */
#define TG_LUA_EXTEND_LEASE                                                               \
  TG_LUA_HELPERS                                                                          \
  "return renew(KEYS[1], ARGV[1], ARGV[3], ARGV[2])\n"

/* KEYS: in, in:prio. ARGV: group, entry id. Returns entries deleted. */
#define TG_LUA_REMOVE                                                                     \
  "local n = 0\n"                                                                         \
  "for k = 1, 2 do\n"                                                                     \
  "  redis.call('XACK', KEYS[k], ARGV[1], ARGV[2])\n"                                     \
  "  n = n + redis.call('XDEL', KEYS[k], ARGV[2])\n"                                      \
  "end\n"                                                                                 \
  "return n\n"

#endif
