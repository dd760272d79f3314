/* rng.h — the library's one pseudo-random generator: splitmix64 (Steele, Lea, Flood 2014).
 * Deterministic in its 64-bit state; used for synthetic weights and training init.
 * Not: a cryptographic generator. */
#ifndef BITNET_RNG_H
#define BITNET_RNG_H
#include <stdint.h>

/* Advance *s and return the next 64-bit output. */
static inline uint64_t bn_splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
#endif
