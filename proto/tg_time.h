/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tg_time.h - RFC 3339 timestamps and clocks.
 *
 * Messages carry times as RFC 3339 strings with an explicit offset
 * ("2024-05-02T22:38:00+08:00" or "...Z"); code works in milliseconds since
 * the Unix epoch.
 */
#ifndef TG_TIME_H
#define TG_TIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/**
 * tg_time_parse() - parse an RFC 3339 date-time with offset
 * @s:      "YYYY-MM-DDThh:mm:ss[.frac](Z|+hh:mm|-hh:mm)"
 * @ms_out: milliseconds since the epoch (UTC)
 * @why:    on failure, a short static reason
 *
 * Checks the calendar (month lengths, leap years) and ranges.
 *
 * Return: true on success.
 */
bool tg_time_parse(const char *s, int64_t *ms_out, const char **why);

/**
 * tg_time_format_utc() - format milliseconds as "YYYY-MM-DDThh:mm:ss.mmmZ"
 * @ms:   milliseconds since the epoch
 * @buf:  output, at least 32 bytes
 * @size: its size
 *
 * Return: @buf.
 */
char *tg_time_format_utc(int64_t ms, char *buf, size_t size);

/**
 * tg_time_utc_date() - the UTC calendar date of an instant
 * @ms:   milliseconds since the epoch
 * @y:    year
 * @m:    month 1-12
 * @d:    day 1-31
 */
void tg_time_utc_date(int64_t ms, int *y, int *m, int *d);

/**
 * tg_now_ms() - wall clock in milliseconds since the epoch
 *
 * Return: the time.
 */
int64_t tg_now_ms(void);

/**
 * tg_mono_ms() - monotonic clock in milliseconds, for timeouts
 *
 * Return: the time.
 */
int64_t tg_mono_ms(void);

/*
 * A call whose timeout was cut to the time left before a deadline, and that
 * ended without an answer this close to the deadline, was ended by the
 * deadline: curl's own millisecond clock may stop it a little early.
 */
#define TG_DEADLINE_SLACK_MS 20

/**
 * tg_deadline_came() - whether a call that ended without an answer was ended
 * by its deadline (within TG_DEADLINE_SLACK_MS of it)
 * @deadline_mono_ms: the deadline on tg_mono_ms()'s clock
 *
 * Return: true when now + TG_DEADLINE_SLACK_MS reaches the deadline.
 */
bool tg_deadline_came(int64_t deadline_mono_ms);

/**
 * tg_sleep_ms() - sleep, resuming after signals
 * @ms: milliseconds
 */
void tg_sleep_ms(int64_t ms);

#endif
