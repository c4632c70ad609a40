<?php
// One PHP "request" using sessions, for t/php_memcached_session.t and
// t/php_memcache_session.t.  The save handler, save_path and every
// other session setting come from -d options on the php command line.
//
// usage: php [-d ...] session.php ACTION SID [ARGS...]
//   write   SID KEY VALUE   start, set $_SESSION[KEY] = VALUE, close
//   read    SID             start and close without changes (with
//                           lazy_write=1 the handler only touches)
//   peek    SID             start with read_and_close: no write, no touch
//   incr    SID HOLD_MS READY
//                           start, create file READY (the lock is held),
//                           wait HOLD_MS, $_SESSION['n']++, close
//   destroy SID             start, session_destroy()
//   big     SID BYTES       start, set $_SESSION['big'] to BYTES bytes,
//                           close
// SID "-" means: let PHP make a new id.
//
// Prints one JSON object on stdout: what each call returned, the
// session id in use, the session data, the times (microtime) at which
// the script began, session_start returned, the close began and
// ended, and every PHP warning or notice raised.

$t_begin = microtime(true);
$warnings = array();
set_error_handler(function ($no, $str) use (&$warnings) {
    $warnings[] = $str;
    return true;
});

$action = $argv[1];
$sid = $argv[2];
$out = array('action' => $action, 't_begin' => $t_begin);

if ($sid !== '-') {
    session_id($sid);
}

if ($action === 'peek') {
    $out['start'] = session_start(array('read_and_close' => true));
    $out['t_started'] = microtime(true);
    $out['id'] = session_id();
    $out['data'] = $_SESSION;
} else {
    $out['start'] = session_start();
    $out['t_started'] = microtime(true);
    $out['id'] = session_id();
    $out['data_read'] = $_SESSION;
    if ($action === 'write') {
        $_SESSION[$argv[3]] = $argv[4];
    } elseif ($action === 'incr') {
        $out['n_read'] = isset($_SESSION['n']) ? $_SESSION['n'] : 0;
        file_put_contents($argv[4], (string)getmypid());
        usleep((int)$argv[3] * 1000);
        $_SESSION['n'] = $out['n_read'] + 1;
    } elseif ($action === 'big') {
        $_SESSION['big'] = substr(str_repeat(md5('x'), 1 + $argv[3] / 32),
                                  0, (int)$argv[3]);
    }
    $out['t_closing'] = microtime(true);
    if ($action === 'destroy') {
        $out['destroy'] = $out['start'] ? session_destroy() : false;
    } else {
        $out['data'] = $_SESSION;
        $out['close'] = $out['start'] ? session_write_close() : false;
    }
    $out['t_closed'] = microtime(true);
}

$out['warnings'] = $warnings;
echo json_encode($out), "\n";
