<?php
// One web request that counts, for t/php_failover.t and scripts/php-soak:
// start the session SID, read $_SESSION['n'] (0 when the session is
// new or lost), store n + 1, close.  The harness keeps, per session,
// the last count it knows was stored, so a read of 0 is a logout and a
// read below that count is a stale read.
//
// php-cli:  php [-d ...] counter.php SID
// php-fpm:  cgi-fcgi with QUERY_STRING=sid=SID (the session settings
//           are the pool's)
// Prints one JSON line: n_read, start and close (what session_start and
// session_write_close returned), pid, and every warning or notice.

$warnings = array();
set_error_handler(function ($no, $str) use (&$warnings) {
    $warnings[] = $str;
    return true;
});

$sid = PHP_SAPI === 'cli' ? $argv[1] : (isset($_GET['sid']) ? $_GET['sid']
                                                            : '');
$out = array('pid' => getmypid(), 'sid' => $sid);
if ($sid === '' || !preg_match('/^[A-Za-z0-9,-]+$/', $sid)) {
    $out['start'] = false;
    $warnings[] = 'bad sid';
} else {
    session_id($sid);
    $out['start'] = session_start();
    $n = isset($_SESSION['n']) ? (int)$_SESSION['n'] : 0;
    $out['n_read'] = $n;
    $_SESSION['n'] = $n + 1;
    $out['close'] = $out['start'] ? session_write_close() : false;
}
$out['warnings'] = $warnings;
echo json_encode($out), "\n";
