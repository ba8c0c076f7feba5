#ifndef BACKSTOP_CCRYPTO_SHIM_H
#define BACKSTOP_CCRYPTO_SHIM_H
#include <openssl/evp.h>
#include <openssl/err.h>
#include <openssl/crypto.h>

/* Initialises libcrypto without its exit-time cleanup: a process that exits while a worker
   thread still hashes (a restore whose reader went away) must not have libcrypto's state freed
   under that thread. */
static inline int backstop_crypto_init_without_atexit(void) {
    return OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, NULL);
}
#endif
