# cython: language_level=3
"""What the compiled engine uses of OpenSSL 3 (``libssl``/``libcrypto``, Debian's ``libssl-dev``);
declarations only. Some are macros in the headers: declared here as the functions they expand
to a call of, which Cython writes out by name."""

from libc.stdint cimport uint64_t


cdef extern from "<openssl/err.h>" nogil:
    unsigned long ERR_peek_last_error()
    void ERR_clear_error()
    int ERR_GET_LIB(unsigned long e)
    int ERR_GET_REASON(unsigned long e)
    const char *ERR_reason_error_string(unsigned long e)


cdef extern from "<openssl/x509.h>" nogil:
    ctypedef struct X509:
        pass
    ctypedef struct ASN1_TIME:
        pass
    struct stack_st_X509:
        pass
    ctypedef struct EVP_MD:
        pass
    const ASN1_TIME *X509_get0_notAfter(const X509 *x)
    const ASN1_TIME *X509_get0_notBefore(const X509 *x)
    int X509_cmp_current_time(const ASN1_TIME *t)
    int ASN1_TIME_diff(int *pday, int *psec, const ASN1_TIME *start, const ASN1_TIME *end)
    int X509_digest(const X509 *data, const EVP_MD *type, unsigned char *md, unsigned int *len)
    int sk_X509_num(const stack_st_X509 *sk)
    X509 *sk_X509_value(const stack_st_X509 *sk, int i)
    const char *X509_verify_cert_error_string(long n)
    long X509_V_OK, X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH
    unsigned long X509_V_FLAG_TRUSTED_FIRST


cdef extern from "<openssl/x509_vfy.h>" nogil:
    ctypedef struct X509_VERIFY_PARAM:
        pass
    int X509_VERIFY_PARAM_set_flags(X509_VERIFY_PARAM *param, unsigned long flags)
    int X509_VERIFY_PARAM_clear_flags(X509_VERIFY_PARAM *param, unsigned long flags)
    void X509_VERIFY_PARAM_set_hostflags(X509_VERIFY_PARAM *param, unsigned int flags)
    int X509_VERIFY_PARAM_set1_host(X509_VERIFY_PARAM *param, const char *name, size_t namelen)
    int X509_VERIFY_PARAM_set1_ip_asc(X509_VERIFY_PARAM *param, const char *ipasc)
    ctypedef struct X509_STORE_CTX:
        pass
    int X509_verify_cert(X509_STORE_CTX *ctx)
    void *X509_STORE_CTX_get_ex_data(const X509_STORE_CTX *ctx, int idx)
    stack_st_X509 *X509_STORE_CTX_get0_untrusted(const X509_STORE_CTX *ctx)
    stack_st_X509 *X509_STORE_CTX_get0_chain(const X509_STORE_CTX *ctx)


cdef extern from "<openssl/x509v3.h>" nogil:
    unsigned int X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT


cdef extern from "<openssl/ssl.h>" nogil:
    ctypedef struct SSL_CTX:
        pass
    ctypedef struct SSL:
        pass
    ctypedef struct SSL_SESSION:
        pass
    ctypedef struct SSL_METHOD:
        pass

    const SSL_METHOD *TLS_client_method()
    SSL_CTX *SSL_CTX_new(const SSL_METHOD *method)
    void SSL_CTX_free(SSL_CTX *ctx)
    uint64_t SSL_CTX_set_options(SSL_CTX *ctx, uint64_t options)
    uint64_t SSL_CTX_clear_options(SSL_CTX *ctx, uint64_t options)
    int SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int version)
    int SSL_CTX_set_max_proto_version(SSL_CTX *ctx, int version)
    int SSL_CTX_set_cipher_list(SSL_CTX *ctx, const char *s)
    int SSL_CTX_set_default_verify_paths(SSL_CTX *ctx)
    int SSL_CTX_load_verify_locations(SSL_CTX *ctx, const char *cafile, const char *capath)
    void SSL_CTX_set_verify(SSL_CTX *ctx, int mode, void *callback)
    long SSL_CTX_set_mode(SSL_CTX *ctx, long mode)
    long SSL_CTX_set_session_cache_mode(SSL_CTX *ctx, long mode)
    void SSL_CTX_sess_set_new_cb(SSL_CTX *ctx, int (*new_session_cb)(SSL *, SSL_SESSION *))
    void SSL_CTX_set_cert_verify_callback(SSL_CTX *ctx, int (*cb)(X509_STORE_CTX *, void *), void *arg)
    int SSL_get_ex_data_X509_STORE_CTX_idx()
    X509_VERIFY_PARAM *SSL_CTX_get0_param(SSL_CTX *ctx)
    int SSL_CTX_set_app_data(SSL_CTX *ctx, void *arg)
    void *SSL_CTX_get_app_data(const SSL_CTX *ctx)

    SSL *SSL_new(SSL_CTX *ctx)
    void SSL_free(SSL *ssl)
    int SSL_set_fd(SSL *ssl, int fd)
    void SSL_set_shutdown(SSL *ssl, int mode)
    int SSL_SENT_SHUTDOWN, SSL_RECEIVED_SHUTDOWN
    long SSL_set_tlsext_host_name(SSL *ssl, const char *name)
    X509_VERIFY_PARAM *SSL_get0_param(SSL *ssl)
    int SSL_set_session(SSL *ssl, SSL_SESSION *session)
    int SSL_session_reused(const SSL *ssl)
    int SSL_connect(SSL *ssl)
    int SSL_read(SSL *ssl, void *buf, int num)
    int SSL_write(SSL *ssl, const void *buf, int num)
    int SSL_get_error(const SSL *ssl, int ret)
    int SSL_has_pending(const SSL *ssl)
    long SSL_get_verify_result(const SSL *ssl)
    int SSL_set_app_data(SSL *ssl, void *arg)
    void *SSL_get_app_data(const SSL *ssl)
    SSL_CTX *SSL_get_SSL_CTX(const SSL *ssl)

    void SSL_SESSION_free(SSL_SESSION *session)
    long SSL_SESSION_get_time(const SSL_SESSION *s)
    long SSL_SESSION_get_timeout(const SSL_SESSION *s)
    X509 *SSL_SESSION_get0_peer(SSL_SESSION *s)
    int SSL_SESSION_is_resumable(const SSL_SESSION *s)

    int SSL_ERROR_NONE, SSL_ERROR_SSL, SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE, SSL_ERROR_SYSCALL
    int SSL_ERROR_ZERO_RETURN
    int SSL_VERIFY_NONE, SSL_VERIFY_PEER
    int TLS1_2_VERSION
    long SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER, SSL_MODE_RELEASE_BUFFERS
    long SSL_SESS_CACHE_CLIENT, SSL_SESS_CACHE_NO_INTERNAL_STORE
    int ERR_LIB_SSL
    int SSL_R_CERTIFICATE_VERIFY_FAILED, SSL_R_UNEXPECTED_EOF_WHILE_READING


cdef extern from "<openssl/evp.h>" nogil:
    const EVP_MD *EVP_sha256()
    int EVP_Digest(const void *data, size_t count, unsigned char *md, unsigned int *size, const EVP_MD *type,
                   void *impl)


cdef extern from "<openssl/crypto.h>" nogil:
    unsigned long OpenSSL_version_num()
