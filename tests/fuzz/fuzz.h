/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz.h - what a fuzz target of tests/fuzz/ exports: libFuzzer's entry
 * point, and its verdict on the last input for the corpus replay
 * (replay.c), which checks that files named ok-* are accepted and bad-*
 * refused. A target abort()s on a broken invariant, which libFuzzer and the
 * replay both report as a crash.
 */
#ifndef TG_FUZZ_H
#define TG_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/**
 * tg_fuzz_verdict() - how the target judged the last input
 * @why: the error message when it was refused, "" when accepted
 * @n:   its size
 *
 * Return: 1 accepted (decoded), 0 refused.
 */
int tg_fuzz_verdict(char *why, size_t n);

#endif
