<?php
// The Memcached class (php-memcached on libmemcached) against one
// server, for t/php_clients.t.
// usage: php memcached_api.php PORT binary|text
// Prints TAP-like lines "ok N - what" / "not ok N - what", "# ..."
// details after a failure, and "1..N" when every check has run.

$port = (int)$argv[1];
$mode = $argv[2];
$bin = ($mode === 'binary');

$n = 0;
$warnings = array();
set_error_handler(function ($no, $str) use (&$warnings) {
    $warnings[] = $str;
    return true;
});

function check($cond, $what, $got = null)
{
    global $n;
    $n++;
    echo ($cond ? 'ok' : 'not ok'), " $n - $what\n";
    if (!$cond) {
        echo '# got: ', str_replace("\n", "\n# ", var_export($got, true)),
            "\n";
    }
}

// check a call's return value and the result code it left behind
function check_rc($m, $ret, $want, $code, $what)
{
    $rc = $m->getResultCode();
    check($ret === $want && $rc === $code, $what, array(
        'returned' => $ret, 'result_code' => $rc,
        'message' => $m->getResultMessage()));
}

$m = new Memcached();
$m->setOption(Memcached::OPT_BINARY_PROTOCOL, $bin);
$m->setOption(Memcached::OPT_COMPRESSION, false);  // append/prepend need it
$m->setOption(Memcached::OPT_CONNECT_TIMEOUT, 5000);
$m->setOption(Memcached::OPT_SEND_TIMEOUT, 5000000);
$m->setOption(Memcached::OPT_RECV_TIMEOUT, 5000000);
$m->setOption(Memcached::OPT_POLL_TIMEOUT, 5000);
$m->addServer('127.0.0.1', $port);
$S = Memcached::RES_SUCCESS;
check($m->flush() === true, 'flush (start from an empty cache)',
      $m->getResultMessage());

// --- set / get -------------------------------------------------------
check_rc($m, $m->set('k1', 'hello'), true, $S, 'set');
check_rc($m, $m->get('k1'), 'hello', $S, 'get hit');
check_rc($m, $m->get('missing'), false, Memcached::RES_NOTFOUND,
         'get miss: false, RES_NOTFOUND');
check_rc($m, $m->set('k1', 'hello2', 3600), true, $S,
         'set with a relative ttl overwrites');
check_rc($m, $m->get('k1'), 'hello2', $S, 'overwritten value');
check_rc($m, $m->set('abs', 'future', time() + 3600), true, $S,
         'set with an absolute expiry time');
check_rc($m, $m->get('abs'), 'future', $S,
         'item with an absolute expiry time is live');
check_rc($m, $m->set('arr', array(1, 'two', 3.5)), true, $S,
         'set an array (client serializes, sets flags)');
check_rc($m, $m->get('arr'), array(1, 'two', 3.5), $S,
         'array round-trips (flags kept)');
check_rc($m, $m->set('int', 42), true, $S, 'set an int');
check_rc($m, $m->get('int'), 42, $S, 'int round-trips as int (flags kept)');
$blob = '';
for ($i = 0; $i < 256; $i++) {
    $blob .= chr($i);
}
$blob = str_repeat($blob, 3000);                     // 768000 bytes
check_rc($m, $m->set('blob', $blob), true, $S, 'set 750 KB binary value');
check_rc($m, $m->get('blob'), $blob, $S, 'get 750 KB binary value');
check_rc($m, $m->set('empty', ''), true, $S, 'set empty string');
check_rc($m, $m->get('empty'), '', $S, 'get empty string');

// --- add / replace ---------------------------------------------------
// libmemcached maps a binary KEY_EEXISTS to RES_DATA_EXISTS and a
// binary KEY_ENOENT to RES_NOTFOUND; text NOT_STORED is RES_NOTSTORED
check_rc($m, $m->add('k1', 'x'), false,
         $bin ? Memcached::RES_DATA_EXISTS : Memcached::RES_NOTSTORED,
         'add on existing key: false, ' . ($bin ? 'RES_DATA_EXISTS'
                                                : 'RES_NOTSTORED'));
check_rc($m, $m->get('k1'), 'hello2', $S, 'failed add changed nothing');
check_rc($m, $m->add('k2', 'two'), true, $S, 'add on new key');
check_rc($m, $m->get('k2'), 'two', $S, 'added value');
check_rc($m, $m->replace('nokey', 'x'), false,
         $bin ? Memcached::RES_NOTFOUND : Memcached::RES_NOTSTORED,
         'replace on missing key: false, ' . ($bin ? 'RES_NOTFOUND'
                                                    : 'RES_NOTSTORED'));
check_rc($m, $m->get('nokey'), false, Memcached::RES_NOTFOUND,
         'failed replace created nothing');
check_rc($m, $m->replace('k2', 'TWO'), true, $S, 'replace existing');
check_rc($m, $m->get('k2'), 'TWO', $S, 'replaced value');

// --- delete ----------------------------------------------------------
check_rc($m, $m->delete('k2'), true, $S, 'delete');
check_rc($m, $m->delete('k2'), false, Memcached::RES_NOTFOUND,
         'delete again: false, RES_NOTFOUND');
check_rc($m, $m->get('k2'), false, Memcached::RES_NOTFOUND, 'deleted');

// --- increment / decrement -------------------------------------------
check_rc($m, $m->set('n', '10'), true, $S, 'set counter "10"');
check_rc($m, $m->increment('n', 5), 15, $S, 'increment by 5');
check_rc($m, $m->increment('n'), 16, $S, 'increment by default 1');
check_rc($m, $m->decrement('n', 6), 10, $S, 'decrement by 6');
check_rc($m, $m->decrement('n', 20), 0, $S, 'decrement floors at 0');
// memcached decrements in place and may pad a shorter number with
// spaces ("10" -> "0 "): compare without trailing blanks
$r = $m->get('n');
check(is_string($r) && rtrim($r, ' ') === '0'
      && $m->getResultCode() === $S, 'counter value as a string', $r);
check_rc($m, $m->increment('nokey', 1), false, Memcached::RES_NOTFOUND,
         'increment missing: false, RES_NOTFOUND');
check_rc($m, $m->decrement('nokey', 1), false, Memcached::RES_NOTFOUND,
         'decrement missing: false, RES_NOTFOUND');
check_rc($m, $m->get('nokey'), false, Memcached::RES_NOTFOUND,
         'failed increment created nothing');
$m->set('text', 'abc');
$r = $m->increment('text', 1);
check($r === false, 'increment of a non-numeric value fails',
      array($r, $m->getResultCode(), $m->getResultMessage()));
check_rc($m, $m->get('text'), 'abc', $S, 'non-numeric value unchanged');
check_rc($m, $m->set('big', '18446744073709551615'), true, $S,
         'set counter 2^64-1');
check_rc($m, $m->increment('big', 1), 0, $S, 'increment wraps to 0');
if ($bin) {
    // binary INCREMENT/DECREMENT carry an initial value and an expiry:
    // the server creates the counter on a miss
    check_rc($m, $m->increment('newctr', 1, 100, 0), 100, $S,
             'binary increment of a missing key returns the initial value');
    check_rc($m, $m->increment('newctr', 1, 100, 0), 101, $S,
             'then increments it');
    check_rc($m, $m->get('newctr'), '101', $S,
             'counter created by increment is a string');
    check_rc($m, $m->decrement('newdec', 3, 7, 0), 7, $S,
             'binary decrement of a missing key returns the initial value');
    check_rc($m, $m->decrement('newdec', 3, 7, 0), 4, $S,
             'then decrements it');
    check_rc($m, $m->increment('newttl', 1, 5, 3600), 5, $S,
             'initial value with an expiry');
    check_rc($m, $m->get('newttl'), '5', $S, 'counter with expiry live');
}

// --- cas ---------------------------------------------------------------
$m->set('c1', 'orig');
$r = $m->get('c1', null, Memcached::GET_EXTENDED);
check(is_array($r) && $r['value'] === 'orig' && is_int($r['cas'])
      && $r['cas'] > 0, 'get with GET_EXTENDED returns value and cas', $r);
$cas = is_array($r) ? $r['cas'] : 0;
check_rc($m, $m->cas($cas, 'c1', 'swapped'), true, $S, 'cas with fresh token');
check_rc($m, $m->get('c1'), 'swapped', $S, 'cas stored the value');
check_rc($m, $m->cas($cas, 'c1', 'again'), false, Memcached::RES_DATA_EXISTS,
         'cas with stale token: false, RES_DATA_EXISTS');
check_rc($m, $m->get('c1'), 'swapped', $S, 'stale cas changed nothing');
check_rc($m, $m->cas(12345, 'nocas', 'x'), false, Memcached::RES_NOTFOUND,
         'cas on missing key: false, RES_NOTFOUND');
$r2 = $m->get('c1', null, Memcached::GET_EXTENDED);
check(is_array($r2) && $r2['cas'] !== $cas, 'a store changes the cas', $r2);
$m->setMulti(array('cm1' => 'a', 'cm2' => 'b'));
$r = $m->getMulti(array('cm1', 'cm2'), Memcached::GET_EXTENDED);
check(is_array($r) && count($r) === 2 && $r['cm1']['value'] === 'a'
      && $r['cm2']['value'] === 'b' && $r['cm1']['cas'] > 0
      && $r['cm1']['cas'] !== $r['cm2']['cas'],
      'getMulti with GET_EXTENDED: values and distinct cas', $r);

// --- append / prepend --------------------------------------------------
check_rc($m, $m->set('ap', 'mid'), true, $S, 'set for append');
check_rc($m, $m->append('ap', '>end'), true, $S, 'append');
check_rc($m, $m->prepend('ap', 'start<'), true, $S, 'prepend');
check_rc($m, $m->get('ap'), 'start<mid>end', $S, 'append/prepend result');
check_rc($m, $m->append('noap', 'x'), false, Memcached::RES_NOTSTORED,
         'append to missing key: false, RES_NOTSTORED');
check_rc($m, $m->prepend('noap', 'x'), false, Memcached::RES_NOTSTORED,
         'prepend to missing key: false, RES_NOTSTORED');
check_rc($m, $m->get('noap'), false, Memcached::RES_NOTFOUND,
         'failed append created nothing');

// --- setMulti / getMulti / deleteMulti --------------------------------
$many = array();
for ($i = 0; $i < 100; $i++) {
    $many["m$i"] = "value$i";
}
check_rc($m, $m->setMulti($many), true, $S, 'setMulti of 100 keys');
$keys = array_merge(array_keys($many), array('absent1', 'absent2'));
$got = $m->getMulti($keys);
check(is_array($got) && $got == $many && count($got) === 100,
      'getMulti returns exactly the stored keys', $got);
$got = $m->getMulti(array('m3', 'absent1', 'm1'),
                    Memcached::GET_PRESERVE_ORDER);
check($got === array('m3' => 'value3', 'absent1' => null, 'm1' => 'value1'),
      'getMulti with GET_PRESERVE_ORDER', $got);
$got = $m->getMulti(array('absent1', 'absent2'));
check($got === array(), 'getMulti of missing keys: empty array', $got);
$r = $m->deleteMulti(array('m1', 'm2', 'absent1'));
check(is_array($r) && $r['m1'] === true && $r['m2'] === true
      && $r['absent1'] === Memcached::RES_NOTFOUND,
      'deleteMulti: true per deleted key, RES_NOTFOUND per missing', $r);
check_rc($m, $m->get('m1'), false, Memcached::RES_NOTFOUND,
         'deleteMulti removed the key');
check($m->getDelayed(array('m3', 'm4')) === true, 'getDelayed');
$all = $m->fetchAll();
$vals = array();
foreach ((array)$all as $row) {
    $vals[$row['key']] = $row['value'];
}
ksort($vals);
check($vals === array('m3' => 'value3', 'm4' => 'value4'),
      'fetchAll after getDelayed', $all);

// --- touch -------------------------------------------------------------
check_rc($m, $m->touch('k1', 3600), true, $S, 'touch existing');
check_rc($m, $m->get('k1'), 'hello2', $S, 'touch kept the value');
check_rc($m, $m->touch('nokey', 3600), false, Memcached::RES_NOTFOUND,
         'touch missing: false, RES_NOTFOUND');
if (!$bin) {
    // text "touch k1 -1"; in binary -1 would be exptime 0xffffffff,
    // an absolute time far in the future
    check_rc($m, $m->touch('k1', -1), true, $S,
             'touch with a negative ttl');
    check_rc($m, $m->get('k1'), false, Memcached::RES_NOTFOUND,
             'a negative ttl expires the item at once');
}

// --- stats / version ---------------------------------------------------
$addr = "127.0.0.1:$port";
$st = $m->getStats();
check(is_array($st) && isset($st[$addr]) && $st[$addr]['pid'] > 0,
      'getStats keyed by server, has pid', $st);
$s1 = isset($st[$addr]) ? $st[$addr] : array();
check(isset($s1['curr_items']) && $s1['curr_items'] >= 100
      && $s1['cmd_get'] > 0 && $s1['cmd_set'] > 100
      && $s1['get_hits'] > 0 && $s1['get_misses'] > 0
      && isset($s1['uptime']) && isset($s1['version'])
      && isset($s1['threads']) && isset($s1['bytes'])
      && isset($s1['limit_maxbytes']),
      'getStats counters', $s1);
$v = $m->getVersion();
check(is_array($v) && isset($v[$addr])
      && preg_match('/^\d+\.\d+\.\d+/', $v[$addr]),
      'getVersion: "X.Y.Z" per server', $v);
// libmemcached rebuilds the version from the numbers it parsed
// ("1.6.18-x" -> "1.6.18"): compare the numeric prefix
check(isset($s1['version']) && isset($v[$addr]) && $v[$addr] !== ''
      && strpos($s1['version'], $v[$addr]) === 0,
      'stats version starts with getVersion', array($s1, $v));
$sl = $m->getStats('slabs');
check(is_array($sl) && isset($sl[$addr]) && isset($sl[$addr]['active_slabs']),
      'getStats("slabs")', $sl);

// --- flush ---------------------------------------------------------------
check_rc($m, $m->flush(), true, $S, 'flush');
check_rc($m, $m->get('m3'), false, Memcached::RES_NOTFOUND,
         'flushed key is gone');
check_rc($m, $m->add('m3', 'again'), true, $S, 'add after flush');
check_rc($m, $m->get('m3'), 'again', $S, 'value stored after flush');

check($warnings === array(), 'no PHP warnings', $warnings);
$m->quit();
echo "1..$n\n";
