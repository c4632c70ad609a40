<?php
// The Memcache class (pecl memcache) against one server, for
// t/php_clients.t.  The protocol comes from -d memcache.protocol=.
// usage: php -d memcache.protocol=ascii|binary memcache_api.php PORT
// Prints TAP-like lines "ok N - what" / "not ok N - what", "# ..."
// details after a failure, and "1..N" when every check has run.

$port = (int)$argv[1];
$bin = (ini_get('memcache.protocol') === 'binary');

$n = 0;
// PHP 8.2 deprecations from the extension itself are not ours; a
// "failed with:" warning is how the client reports an error reply
// (NOT_FOUND, CLIENT_ERROR ...) that the checks below expect
$warnings = array();
set_error_handler(function ($no, $str) use (&$warnings) {
    if ($no !== E_DEPRECATED && strpos($str, ' failed with: ') === false) {
        $warnings[] = $str;
    }
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

function is_same($got, $want, $what)
{
    check($got === $want, $what, $got);
}

function connect_pool($port)
{
    $m = new Memcache();
    $ok = $m->addServer('127.0.0.1', $port, false, 1, 5, 15);
    $m->setCompressThreshold(0);  // never compress: append needs raw data
    return $ok ? $m : null;
}

// pecl memcache drops the connection and marks the server down for
// retry_interval seconds on some error replies that memcached sends
// for an ordinary miss (text: NOT_FOUND to cas; binary: KEY_ENOENT to
// replace or cas, NOT_STORED to append/prepend), so every call
// expected to fail runs on a pool of its own: f() returns a fresh one
function f()
{
    global $port;
    return connect_pool($port);
}

$m = connect_pool($port);
check($m !== null, 'addServer');
is_same($m->flush(), true, 'flush (start from an empty cache)');

// --- set / get -------------------------------------------------------
is_same($m->set('k1', 'hello'), true, 'set');
is_same($m->get('k1'), 'hello', 'get hit');
is_same($m->get('missing'), false, 'get miss: false');
is_same($m->set('k1', 'hello2', 0, 3600), true, 'set with a relative ttl');
is_same($m->get('k1'), 'hello2', 'overwritten value');
is_same($m->set('abs', 'future', 0, time() + 3600), true,
        'set with an absolute expiry time');
is_same($m->get('abs'), 'future', 'item with an absolute expiry is live');
// the client keeps the low 16 bits of flags for itself
$flags = null;
is_same($m->set('fl', 'flagged', 0x10000), true,
        'set with user flags 0x10000');
is_same($m->get('fl', $flags), 'flagged', 'get with flags');
is_same($flags, 0x10000, 'flags round-trip');
is_same($m->set('arr', array(1, 'two', 3.5)), true,
        'set an array (client serializes, sets a flag)');
is_same($m->get('arr'), array(1, 'two', 3.5), 'array round-trips');
is_same($m->set('int', 42), true, 'set an int');
is_same($m->get('int'), 42, 'int round-trips');
$blob = '';
for ($i = 0; $i < 256; $i++) {
    $blob .= chr($i);
}
$blob = str_repeat($blob, 3000);                     // 768000 bytes
is_same($m->set('blob', $blob), true, 'set 750 KB binary value');
is_same($m->get('blob'), $blob, 'get 750 KB binary value');
is_same($m->set('empty', ''), true, 'set empty string');
is_same($m->get('empty'), '', 'get empty string');

// --- add / replace / delete -------------------------------------------
is_same(f()->add('k1', 'x'), false, 'add on existing key: false');
is_same($m->get('k1'), 'hello2', 'failed add changed nothing');
is_same($m->add('k2', 'two'), true, 'add on new key');
is_same(f()->replace('nokey', 'x'), false, 'replace on missing key: false');
is_same($m->get('nokey'), false, 'failed replace created nothing');
is_same($m->replace('k2', 'TWO'), true, 'replace existing');
is_same($m->get('k2'), 'TWO', 'replaced value');
is_same($m->delete('k2'), true, 'delete');
is_same(f()->delete('k2'), false, 'delete again: false');
is_same($m->get('k2'), false, 'deleted');

// --- increment / decrement ---------------------------------------------
is_same($m->set('n', '10'), true, 'set counter "10"');
is_same($m->increment('n', 5), 15, 'increment by 5');
is_same($m->increment('n'), 16, 'increment by default 1');
is_same($m->decrement('n', 6), 10, 'decrement by 6');
is_same($m->decrement('n', 20), 0, 'decrement floors at 0');
$r = $m->get('n');
check(is_string($r) && rtrim($r, ' ') === '0', 'counter value', $r);
is_same(f()->increment('nokey', 1), false, 'increment missing: false');
is_same(f()->decrement('nokey', 1), false, 'decrement missing: false');
is_same($m->get('nokey'), false, 'failed increment created nothing');
$m->set('text', 'abc');
is_same(f()->increment('text', 1), false,
        'increment of a non-numeric value: false');
is_same($m->get('text'), 'abc', 'non-numeric value unchanged');
if ($bin) {
    // binary INCREMENT with a default value and expiry creates the
    // counter on a miss (what the session lock relies on)
    is_same($m->increment('newctr', 1, 100, 3600), 100,
            'binary increment of a missing key with defval');
    is_same($m->increment('newctr', 1, 100, 3600), 101, 'then increments');
    is_same($m->get('newctr'), '101', 'created counter is a string');
}

// --- cas ---------------------------------------------------------------
$m->set('c1', 'orig');
$flags = null;
$cas = null;
is_same($m->get('c1', $flags, $cas), 'orig', 'get with a cas token');
check(is_int($cas) && $cas > 0, 'cas token is a positive int', $cas);
is_same($m->cas('c1', 'swapped', 0, 0, $cas), true, 'cas with fresh token');
is_same($m->get('c1'), 'swapped', 'cas stored the value');
is_same(f()->cas('c1', 'again', 0, 0, $cas), false, 'cas with stale token');
is_same($m->get('c1'), 'swapped', 'stale cas changed nothing');
is_same(f()->cas('nocas', 'x', 0, 0, 12345), false, 'cas on missing key');

// --- append / prepend --------------------------------------------------
is_same($m->set('ap', 'mid'), true, 'set for append');
is_same($m->append('ap', '>end'), true, 'append');
is_same($m->prepend('ap', 'start<'), true, 'prepend');
is_same($m->get('ap'), 'start<mid>end', 'append/prepend result');
is_same(f()->append('noap', 'x'), false, 'append to missing key: false');
is_same(f()->prepend('noap', 'x'), false, 'prepend to missing key: false');
is_same($m->get('noap'), false, 'failed append created nothing');

// --- multi-get -----------------------------------------------------------
$many = array();
for ($i = 0; $i < 100; $i++) {
    $many["m$i"] = "value$i";
    $m->set("m$i", "value$i");
}
$got = $m->get(array_merge(array_keys($many), array('absent1', 'absent2')));
check(is_array($got) && $got == $many && count($got) === 100,
      'multi-get returns exactly the stored keys', $got);
is_same($m->get(array('absent1', 'absent2')), array(),
        'multi-get of missing keys: empty array');
$fl = null;
$cs = null;
$got = $m->get(array('fl', 'm1'), $fl, $cs);
check(is_array($got) && $got === array('fl' => 'flagged', 'm1' => 'value1')
      && $fl['fl'] === 0x10000 && $cs['fl'] > 0 && $cs['m1'] > 0
      && $cs['fl'] !== $cs['m1'], 'multi-get with flags and cas',
      array($got, $fl, $cs));

// --- stats / version -----------------------------------------------------
$v = $m->getVersion();
check(is_string($v) && preg_match('/^\d+\.\d+\.\d+/', $v) === 1,
      'getVersion "X.Y.Z"', $v);
if (!$bin) {
    // the client has no binary STAT: getStats is ascii only
    $st = $m->getStats();
    check(is_array($st) && $st['pid'] > 0 && $st['curr_items'] >= 100
          && $st['cmd_get'] > 0 && $st['cmd_set'] > 100
          && $st['get_hits'] > 0 && isset($st['uptime'])
          && isset($st['limit_maxbytes']), 'getStats', $st);
    check(isset($st['version']) && $st['version'] === $v,
          'stats version equals getVersion', array($v, $st));
    $ext = $m->getExtendedStats();
    check(is_array($ext) && isset($ext["127.0.0.1:$port"]['pid']),
          'getExtendedStats keyed by server', $ext);
    $sl = $m->getStats('slabs');
    check(is_array($sl) && isset($sl['active_slabs']), 'getStats("slabs")',
          $sl);
    $it = $m->getStats('items');
    check(is_array($it) && isset($it['items']) && is_array($it['items']),
          'getStats("items")', $it);
}

// --- flush ---------------------------------------------------------------
is_same($m->flush(), true, 'flush');
is_same($m->get('m3'), false, 'flushed key is gone');
is_same($m->add('m3', 'again'), true, 'add after flush');
is_same($m->get('m3'), 'again', 'value stored after flush');

check($m->getServerStatus('127.0.0.1', $port) > 0,
      'the main pool never marked the server down',
      $m->getServerStatus('127.0.0.1', $port));
is_same($warnings, array(), 'no PHP warnings');
$m->close();
echo "1..$n\n";
