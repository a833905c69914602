/** How src/etcd reads etcd's gateway answers: the shapes seen from etcd 3.4, row by row. */
import { describe, expect, it } from 'vitest';
import { classify, readBody } from '../../src/etcd/answer.js';
import { keyValue, prefixEnd } from '../../src/etcd/codec.js';

describe('prefixEnd', () => {
  it.each([
    ['/a/', [0x2f, 0x61, 0x30]],
    [Buffer.from([0x61, 0xff]), [0x62]],
    [Buffer.from([0x61, 0xfe, 0xff, 0xff]), [0x61, 0xff]],
    [Buffer.from([0xff, 0xff]), [0]], // nothing above: every key from the prefix on
  ])('%s', (prefix, end) => {
    expect([...prefixEnd(prefix)]).toEqual(end);
  });
});

describe('keyValue', () => {
  it('fills what etcd omits (default values) and keeps lease IDs as strings', () => {
    expect(keyValue({ key: Buffer.from('k').toString('base64') })).toMatchObject({ key: 'k', value: '', createRevision: '0', modRevision: '0', version: '0' });
    expect(keyValue({ key: 'aw==', lease: '0' }).lease).toBeUndefined();
    expect(keyValue({ key: 'aw==', lease: '9223372036854775807' }).lease).toBe('9223372036854775807');
  });
});

describe('readBody', () => {
  it.each([
    ['a unary answer', 200, '{"header":{"revision":"2"},"count":"1"}', { ok: true, message: { header: { revision: '2' }, count: '1' } }],
    ['a streamed answer, unwrapped', 200, '{"result":{"ID":"7","TTL":"5"}}\n', { ok: true, message: { ID: '7', TTL: '5' } }],
    ['a streamed answer without TTL (lease gone)', 200, '{"result":{"header":{},"ID":"7"}}\n', { ok: true, message: { header: {}, ID: '7' } }],
    [
      'a unary error',
      503,
      '{"error":"etcdserver: no leader","message":"etcdserver: no leader","code":14}',
      { ok: false, grpcCode: 14, error: 'etcdserver: no leader', httpStatus: 503 },
    ],
    [
      'a streamed error',
      200,
      '{"error":{"grpc_code":5,"http_code":404,"message":"etcdserver: requested lease not found","http_status":"Not Found"}}',
      { ok: false, grpcCode: 5, error: 'etcdserver: requested lease not found', httpStatus: 404 },
    ],
    ['an empty answer', 502, '', { ok: false, grpcCode: 14, httpStatus: 502 }],
    ['a proxy error page', 502, '<html>Bad Gateway</html>', { ok: false, grpcCode: 14, httpStatus: 502 }],
    ['the gateway refusing a client CN', 400, 'CommonName of client sending a request against gateway will be ignored and not used as expected', { ok: false, grpcCode: 3 }],
  ])('%s', (_, status, body, expected) => {
    expect(readBody(body, status)).toMatchObject(expected);
  });
});

describe('classify', () => {
  it.each([
    [14, 'etcdserver: no leader', 'no-leader'],
    [14, 'etcdserver: request timed out', 'unavailable'],
    [4, 'context deadline exceeded', 'unavailable'],
    [2, 'not a primary lessor', 'unavailable'],
    [16, 'etcdserver: invalid auth token', 'token'],
    [3, 'etcdserver: user name is empty', 'token'],
    [3, 'etcdserver: revision of auth store is old', 'token'],
    [3, 'etcdserver: authentication failed, invalid user ID or password', 'auth'],
    [7, 'etcdserver: permission denied', 'auth'],
    [5, 'etcdserver: requested lease not found', 'not-found'],
    [3, 'etcdserver: duplicate key given in txn request', 'rejected'],
  ])('%i %s → %s', (code, error, expected) => {
    expect(classify(code, error)).toBe(expected);
  });
});
