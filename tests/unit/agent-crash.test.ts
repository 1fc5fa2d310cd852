/** common/crash.ts: an unhandled rejection is logged and counted; an uncaught exception exits 70. */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import pino from 'pino';
import { CRASH_EXIT_CODE, type CrashKind, describeThrown, installCrashHandlers } from '../../common/crash.js';

function capture() {
  const records: { level: number; msg: string; err?: { message: string; stack?: string }; kind?: string }[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => void records.push(JSON.parse(line)) });
  return { log, records };
}

describe('installCrashHandlers', () => {
  it('logs and counts an unhandled rejection and keeps running', () => {
    const { log, records } = capture();
    const target = new EventEmitter();
    const counted: CrashKind[] = [];
    const exits: number[] = [];
    const remove = installCrashHandlers(log, 'agent', {
      target,
      counter: { inc: ({ kind }) => void counted.push(kind) },
      exit: (c) => void exits.push(c),
    });
    target.emit('unhandledRejection', new Error('lost report'));
    assert.deepEqual(counted, ['unhandled_rejection']);
    assert.deepEqual(exits, []);
    assert.equal(records[0]?.level, 50);
    assert.equal(records[0]?.err?.message, 'lost report');
    assert.match(records[0]?.err?.stack ?? '', /lost report/);
    assert.match(records[0]?.msg ?? '', /keeps serving/);
    remove();
    assert.equal(target.listenerCount('unhandledRejection'), 0);
  });

  it('logs, counts and exits non-zero on an uncaught exception', () => {
    const { log, records } = capture();
    const target = new EventEmitter();
    const counted: CrashKind[] = [];
    const exits: number[] = [];
    installCrashHandlers(log, 'manager', {
      target,
      counter: { inc: ({ kind }) => void counted.push(kind) },
      exit: (c) => void exits.push(c),
    });
    target.emit('uncaughtException', new TypeError('boom'), 'uncaughtException');
    assert.deepEqual(counted, ['uncaught_exception']);
    assert.deepEqual(exits, [CRASH_EXIT_CODE]);
    assert.notEqual(CRASH_EXIT_CODE, 0);
    assert.equal(records[0]?.level, 60);
    assert.equal(records[0]?.kind, 'uncaught_exception');
  });

  it('is installed once per target', () => {
    const { log } = capture();
    const target = new EventEmitter();
    const a = installCrashHandlers(log, 'agent', { target, exit: () => {} });
    const b = installCrashHandlers(log, 'agent', { target, exit: () => {} });
    assert.equal(a, b);
    assert.equal(target.listenerCount('uncaughtException'), 1);
    a();
  });

  it('logs only name, message, code and stack of an error, never its other properties', () => {
    const err = Object.assign(new Error('request failed'), {
      code: 'UND_ERR_SOCKET',
      headers: { authorization: 'Bearer secret' },
    });
    const d = describeThrown(err);
    assert.equal(d.code, 'UND_ERR_SOCKET');
    assert.doesNotMatch(JSON.stringify(d), /secret/);
    assert.equal(describeThrown('text').message, 'text');
    assert.equal(describeThrown({ a: 1 }).message, '{"a":1}');
  });
});
