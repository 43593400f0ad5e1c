#!/usr/bin/env python3
"""Writes the hand-made seed inputs of the binary fuzz targets into
corpus/<target>/seed_*. The layouts are those the targets' comments give
(fuzz_shm_reader.c, fuzz_wire.c, fuzz_crashlog.c, fuzz_events.c); run again after changing
one. The text targets (config, maps, snapshot, records, symbolize) have hand-written or
recorded seeds kept as files."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def put(target, name, data):
    d = os.path.join(HERE, 'corpus', target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, 'seed_' + name), 'wb') as f:
        f.write(data)


def name32(s):
    return s.ljust(32, b'\0')[:32]


# ---- shm_reader ---------------------------------------------------------------
# slot: seq tid id spawn start end cpu rc type status flags restarts reserved name
def slot(seq, tid, tid_id, typ, status, name, flags=0, restarts=0):
    return struct.pack('<IIQQQQQiHBBII', seq, tid, tid_id, 100, 200, 0 if status == 0 else 300, 50,
                       0, typ, status, flags, restarts, 0) + name32(name)


def type_chunk(name, counters, bucket=0, value=0, lat=(0, 0, 0)):
    head = name32(name) + struct.pack('<11Q', *counters) + struct.pack('<QQ', 0, 0) + struct.pack('<3Q', *lat)
    return head + struct.pack('<HQ', bucket, value)


def shm(mode, raw, delta=0, header=b'', slots=b'', types=b''):
    return struct.pack('<BBhB', mode, raw, delta, len(header)) + header + slots + types


good_slots = (slot(2, 1234, 1, 0, 0, b'fetch_peers') + slot(4, 1235, 2, 1, 1, b'db_write') +
              slot(3, 1236, 3, 2, 2, b'odd_seq_torn') + slot(2, 1237, 4, 7, 3, b'x' * 32))
counters = [10, 2, 5, 1, 1, 1, 0, 3, 4, 0, 0]
good_types = (type_chunk(b'general', counters, 40, 7, (7, 5000, 20000)) +
              type_chunk(b'network', [1 << 63] * 11, 1215, (1 << 64) - 1, (1, 0, 0)) +
              type_chunk(b'bad\x1b[31m', counters) + type_chunk(b'', counters))
put('shm_reader', 'valid', shm(3 << 3, 0, slots=good_slots, types=good_types))
put('shm_reader', 'truncated', shm(3 << 3 | 2, 0, slots=good_slots, types=good_types))
put('shm_reader', 'pid_named', shm(3 << 3 | 1, 0, slots=good_slots, types=good_types))
put('shm_reader', 'running_only', shm(3 << 3 | 4, 0xc0, slots=good_slots, types=good_types))
bad_slots = (slot(2, 0xffffffff, 9, 40, 9, b'no_nul' * 6) + slot(2, 1, 10, 0, 0, b'\x07bell') +
             slot(0, 0, 0, 0, 0, b'') + slot(2, 5, 0, 0, 0, b'freed'))
put('shm_reader', 'bad_slots', shm(3 << 3, 0, slots=bad_slots, types=good_types))
# header overlays: huge slots_used/types_used, slot count beyond the file, offsets overlapping
hdr = bytearray(208)
struct.pack_into('<Q', hdr, 0, 0x314e4f4d4b534154)
struct.pack_into('<IIIIII', hdr, 8, 3, 208, 0, 96, 32, 1216)
struct.pack_into('<QQQ', hdr, 32, 208, 208, 1 << 40)
struct.pack_into('<Ii', hdr, 56, 0xffffffff, -1)
struct.pack_into('<QQQ', hdr, 88, 1 << 62, 5, 1 << 62)
put('shm_reader', 'forged_header', shm(0, 0xff, header=bytes(hdr)))
put('shm_reader', 'overlap', shm(0, 0x04, header=bytes(hdr[:56])))
put('shm_reader', 'counts_only', shm(1 << 3, 0, header=bytes(hdr[:120]), slots=good_slots[:96]))
put('shm_reader', 'short_file', shm(0, 0x20, delta=-30000, slots=good_slots))
put('shm_reader', 'long_file', shm(0, 0x20, delta=4, slots=good_slots))
# message ring entries (after all 32 types): seq len kind flags task serial time restarts reserved text
def message(seq, task, serial, text, kind=1, flags=0, length=None):
    n = len(text) if length is None else length
    return struct.pack('<IHBBQQQII', seq, n, kind, flags, task, serial, 1000 + serial, 0, 0) + \
        text.ljust(120, b'\0')[:120]


all_types = good_types + type_chunk(b'', counters) * 28
good_msgs = (message(2, 1, 10, b'boom') + message(4, 2, 12, b'disk full on /var') +
             message(2, 3, 11, b'SIGSEGV (si_code 1) at address 0x0...', kind=2, flags=1) +
             message(2, 4, 13, b'forged length', length=500) + message(2, 5, 14, b'x' * 120, length=120) +
             message(2, 6, 15, b'\x1b[2Jescape') + message(3, 7, 16, b'torn') + message(2, 0, 17, b'task 0', kind=9))
put('shm_reader', 'messages', shm(3 << 3, 0, slots=good_slots, types=all_types + good_msgs))
put('shm_reader', 'messages_truncated', shm(3 << 3 | 2, 0, slots=good_slots, types=all_types + good_msgs))
put('shm_reader', 'messages_raw', shm(3 << 3 | 4, 0x06, header=bytes(hdr[:208]), slots=good_slots,
                                      types=all_types + good_msgs))

# ---- wire -------------------------------------------------------------------------
MAGIC, VER = 0x31574d54, 1


def op(code, k=0):
    return bytes([(k << 3) | code])


def hdr_op(k, typ, length, status=0):
    return op(2, k) + struct.pack('<HBB', typ, length, status & 0xff)


def send(k, data):
    return op(1, k) + bytes([len(data)]) + data


def run(ms):
    return op(5) + struct.pack('<H', ms)


def read(k):
    return op(6, k)


put('wire', 'register', op(0) + hdr_op(0, 0x101, 0) + run(1) + read(0))
put('wire', 'snapshot', op(0) + hdr_op(0, 0x102, 8) + send(0, struct.pack('<II', 0, 5000)) + run(1) + read(0) +
    run(1) + read(0))
put('wire', 'snapshot_empty', op(0) + hdr_op(0, 0x102, 0) + run(1) + read(0) + hdr_op(0, 0x101, 0) + run(1) + read(0))
put('wire', 'flood', b''.join(op(0, k) for k in range(8)) + run(1) + b''.join(read(k) for k in range(8)))
put('wire', 'bad_magic', op(0) + send(0, struct.pack('<IHHIi', 0xdeadbeef, 1, 1, 0, 0)) + run(1) + read(0))
put('wire', 'oversize', op(0) + hdr_op(0, 0x102, 200) + run(1) + read(0))
put('wire', 'unknown_type', op(0) + hdr_op(0, 7, 0) + run(1) + read(0))
put('wire', 'slowloris', op(0) + send(0, struct.pack('<IH', MAGIC, VER)) + run(1) + run(3000) + read(0))
put('wire', 'rate', op(0) + b''.join(hdr_op(0, 0x101, 0) + run(1) + read(0) for _ in range(6)))
put('wire', 'refused', op(0) + op(7) + b'\x01' + hdr_op(0, 0x101, 0) + run(1) + read(0))
put('wire', 'unread_replies', b''.join(op(0, k) + hdr_op(k, 0x102, 8) + send(k, struct.pack('<II', 0, 199999))
                                      for k in range(4)) + run(1) + run(1) + run(2000) + run(20000) + read(0))
put('wire', 'half_close', op(0) + send(0, struct.pack('<IHHIi', MAGIC, VER, 1, 0, 0)) + op(3) + run(1) + read(0))
put('wire', 'close_mid_reply', op(0) + hdr_op(0, 0x102, 8) + send(0, struct.pack('<II', 0, 150000)) + run(1) +
    op(4) + run(1))
put('wire', 'snapshot_error', op(0) + hdr_op(0, 0x102, 8) + send(0, struct.pack('<II', 0x80000000, 0)) + run(1) +
    read(0))

# ---- crashlog -----------------------------------------------------------------------
def crash(task_id, sig, code, flags, stack, comm, opt_flags, names=b''):
    ev = struct.pack('<QQIIII', 123456789, task_id, 5, 4242, 4243, 1)
    ev += struct.pack('<Qq', 0xdead, len(stack) * 8 if flags & 1 else -14)
    ev += struct.pack('<iiIIII', sig, code, 0, flags, 4243, 0)
    ev += comm.ljust(16, b'\0')[:16]
    ev += b''.join(struct.pack('<Q', a) for a in stack).ljust(256, b'\0')
    return ev + bytes([opt_flags]) + names


stack = [0x555555554010, 0x7ffff7fc1010, 0x7ffff7e00100, 0x1234]
put('crashlog', 'segv', crash(5, 11, 1, 1, stack, b'worker', 3, b'dice_roll\0game_logic\0'))
put('crashlog', 'escapes', crash(5, 11, 1, 1, stack, b'w\x1b]0;pwn\x07\x9b2J', 3 | (3 << 3),
                                 b't\x1b[2J\r\n\0ty\xff\xfe\xc2\x9b\0'))
put('crashlog', 'no_stack', crash(0, 6, -6, 0, [], b'abort', 4))
put('crashlog', 'kernel_code', crash(9, 7, 0x80, 1, stack[:1], b'\xff\xfe\xfd', 1, b'\x7f\0'))
put('crashlog', 'odd_signal', crash(9, 64, 99, 1, [0] * 32, b'x', 2 | (0x1f << 3), b'\0'))

# ---- events ---------------------------------------------------------------------------
def ev_hdr(kind, task=7):
    return struct.pack('<QQIIII', 123, task, kind, 4242, 4243, 1)


ev_name = b'dice\x1b[2J\x07'.ljust(32, b'\0')
ev_start = (ev_hdr(1) + struct.pack('<7Q', 1, 2, 3, 4, 5, 6, 7) + struct.pack('<IIII', 4242, 3, 1, 0) + ev_name)
put('events', 'start', ev_start)
put('events', 'end', ev_hdr(2) + struct.pack('<4Q', 1, 2, 3, 4) + struct.pack('<IIIiiI', 1, 2, 3, 1, 0, 0))
put('events', 'restart', ev_hdr(3) + struct.pack('<QQ', 100, 2))
put('events', 'giveup', ev_hdr(4) + struct.pack('<QQ', 0, 5))
put('events', 'crash', ev_hdr(5) + struct.pack('<Qq', 0x10, 16) + struct.pack('<iiIIII', 11, 1, 0, 1, 4243, 0) +
    b'w\x1b]0;x\x07'.ljust(16, b'\0') + struct.pack('<Q', 0x401000) * 32)
put('events', 'kill', ev_hdr(6) + struct.pack('<IIiiII', 1, 1, 9, 0, 0, 0) + b'\xff\xfekill'.ljust(16, b'\0'))
put('events', 'exit', ev_hdr(7) + struct.pack('<iiII', 0, 11, 1, 0) + b'x' * 16)
put('events', 'short', ev_start[:40])
