/* zlib for stored state, compatible byte for byte with Python's zlib.compress. */
#include "persistence/compressor.h"

#include <limits.h>
#include <stdlib.h>

#include <zlib.h>
#include "core/alloc.h"

esg_status esg_compress(const uint8_t *data, size_t len, uint8_t **out, size_t *out_len,
                        esg_error *err)
{
    *out = NULL;
    if (len > UINT_MAX / 2)
        return esg_error_set(err, ESG_EINVAL, "cannot compress more than 2 GiB");
    uLongf bound = compressBound((uLong)len);
    uint8_t *bytes = esg_malloc(bound);
    if (bytes == NULL)
        return esg_error_set(err, ESG_ENOMEM, "out of memory compressing");
    /* compress2 is deflateInit2 with window 15, memory level 8 and the default strategy: what
     * Python's zlib.compress(data) does, so the bytes are the same. */
    int rc = compress2(bytes, &bound, data, (uLong)len, Z_DEFAULT_COMPRESSION);
    if (rc != Z_OK) {
        esg_free(bytes);
        return esg_error_set(err, rc == Z_MEM_ERROR ? ESG_ENOMEM : ESG_EINTERNAL,
                             "cannot compress (zlib error %d)", rc);
    }
    *out = bytes;
    *out_len = bound;
    return ESG_OK;
}

esg_status esg_decompress(const uint8_t *data, size_t len, uint8_t **out, size_t *out_len,
                          esg_error *err)
{
    *out = NULL;
    if (len > UINT_MAX)
        return esg_error_set(err, ESG_EDATA, "cannot decompress: more than 4 GiB");
    z_stream stream = {.next_in = (Bytef *)data, .avail_in = (uInt)len};
    if (inflateInit(&stream) != Z_OK)
        return esg_error_set(err, ESG_ENOMEM, "out of memory decompressing");
    size_t capacity = len < 1024 ? 4096 : len * 4;
    if (capacity > ESG_MAX_DECOMPRESSED_BYTES)
        capacity = ESG_MAX_DECOMPRESSED_BYTES;
    uint8_t *bytes = NULL;
    size_t n = 0;
    esg_status status = ESG_OK;
    int rc = Z_OK;
    while (rc == Z_OK) {
        if (bytes == NULL || n == capacity) {
            if (bytes != NULL && capacity == ESG_MAX_DECOMPRESSED_BYTES) {
                status = esg_error_set(err, ESG_EDATA,
                                       "cannot decompress: it inflates to more than %u MiB",
                                       ESG_MAX_DECOMPRESSED_BYTES / (1024 * 1024));
                break;
            }
            if (bytes != NULL)
                capacity = capacity * 2 > ESG_MAX_DECOMPRESSED_BYTES ? ESG_MAX_DECOMPRESSED_BYTES
                                                                     : capacity * 2;
            /* A byte more than the stream can fill, for the NUL. */
            uint8_t *bigger = esg_realloc(bytes, capacity + 1);
            if (bigger == NULL) {
                status = esg_error_set(err, ESG_ENOMEM, "out of memory decompressing");
                break;
            }
            bytes = bigger;
        }
        stream.next_out = bytes + n;
        stream.avail_out = (uInt)(capacity - n);
        rc = inflate(&stream, Z_NO_FLUSH);
        n = capacity - stream.avail_out;
        if (rc == Z_BUF_ERROR && stream.avail_in == 0)
            rc = Z_DATA_ERROR; /* it ended before the end of the stream */
        else if (rc == Z_BUF_ERROR)
            rc = Z_OK; /* out of room: grow and go on */
    }
    if (status == ESG_OK && rc != Z_STREAM_END)
        status = esg_error_set(err, rc == Z_MEM_ERROR ? ESG_ENOMEM : ESG_EDATA,
                               "cannot decompress: not a complete zlib stream (%s)",
                               stream.msg != NULL ? stream.msg : "it ends early");
    if (status == ESG_OK && stream.avail_in != 0)
        status = esg_error_set(err, ESG_EDATA,
                               "cannot decompress: %u bytes follow the end of the zlib stream",
                               stream.avail_in);
    inflateEnd(&stream);
    if (status != ESG_OK) {
        esg_free(bytes);
        return status;
    }
    bytes[n] = '\0';
    *out = bytes;
    *out_len = n;
    return ESG_OK;
}
