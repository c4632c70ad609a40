#!/usr/bin/perl
# A real Python client (pymemcache, Debian's python3-pymemcache) doing
# set/get/add/replace/cas/incr/decr/append/delete/get_many/touch.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MemcTest;

# Debian's interpreter has the module; a pyenv "python3" on PATH may not
my ($py) = grep { -x } ($ENV{MEMCTEST_PYTHON} // ()), '/usr/bin/python3';
plan skip_all => 'no /usr/bin/python3' unless $py;
{
    my ($st) = run_cmd([$py, '-c', 'import pymemcache'], timeout => 30);
    plan skip_all => 'python3-pymemcache not installed' if $st != 0;
}

my $srv = MemcTest->start();

my $script = <<'PY';
import sys
from pymemcache.client.base import Client

port = int(sys.argv[1])
c = Client(('127.0.0.1', port), connect_timeout=5, timeout=5)
n = 0

def check(cond, what):
    global n
    n += 1
    print(('ok' if cond else 'not ok') + ' %d - %s' % (n, what))
    sys.stdout.flush()

check(c.set('k1', b'hello', noreply=False) is True, 'set')
check(c.get('k1') == b'hello', 'get')
check(c.get('missing') is None, 'get miss')
check(c.add('k1', b'x', noreply=False) is False, 'add existing -> False')
check(c.add('k2', b'two', noreply=False) is True, 'add new -> True')
check(c.replace('nokey', b'x', noreply=False) is False, 'replace missing')
check(c.replace('k2', b'TWO', noreply=False) is True, 'replace existing')
check(c.append('k1', b' world', noreply=False) is True, 'append')
check(c.prepend('k1', b'>', noreply=False) is True, 'prepend')
check(c.get('k1') == b'>hello world', 'append/prepend result')

val, cas = c.gets('k1')
check(val == b'>hello world' and cas is not None, 'gets returns a cas')
check(c.cas('k1', b'swapped', cas, noreply=False) is True, 'cas ok')
check(c.cas('k1', b'again', cas, noreply=False) is False, 'cas stale')
check(c.cas('nokey', b'x', b'1', noreply=False) is None, 'cas missing')
check(c.get('k1') == b'swapped', 'cas result')

check(c.set('n', b'10', noreply=False) is True, 'set counter')
check(c.incr('n', 5, noreply=False) == 15, 'incr')
check(c.decr('n', 20, noreply=False) == 0, 'decr floors at 0')
check(c.incr('nokey', 1, noreply=False) is None, 'incr missing')
check(c.incr('n', 18446744073709551615, noreply=False)
      == 18446744073709551615, 'incr to 2^64-1')
check(c.incr('n', 1, noreply=False) == 0, 'incr wraps')

many = dict(('m%d' % i, ('v%d' % i).encode()) for i in range(100))
check(c.set_many(many, noreply=False) == [], 'set_many')
got = c.get_many(list(many) + ['absent1', 'absent2'])
check(got == many, 'get_many returns exactly the stored keys')

check(c.touch('k1', 100, noreply=False) is True, 'touch existing')
check(c.touch('nokey', 100, noreply=False) is False, 'touch missing')
check(c.delete('k1', noreply=False) is True, 'delete')
check(c.delete('k1', noreply=False) is False, 'delete again')
check(c.get('k1') is None, 'deleted')

c.set('quiet', b'q', noreply=True)
check(c.get('quiet') == b'q', 'noreply set')

big = bytes(range(256)) * 4000
check(c.set('big', big, noreply=False) is True, 'set 1 MB - binary')
check(c.get('big') == big, 'get 1 MB - binary')

stats = c.stats()
check(int(stats[b'curr_items']) >= 100, 'stats curr_items')
check(int(stats[b'cmd_set']) > 100, 'stats cmd_set')
check(c.version().split(b'.')[0].isdigit(), 'version')
check(c.flush_all(noreply=False) is True, 'flush_all')
check(c.get('k2') is None, 'flushed')
c.quit()
print('1..%d' % n)
PY

my $file = tmp_dir() . '/client.py';
open my $fh, '>', $file or die "$file: $!";
print $fh $script;
close $fh;

my ($st, $out) = run_cmd([$py, $file, $srv->port], timeout => 60);
is($st, 0, 'python client exits 0') or diag($out);
my @ok = $out =~ /^ok \d+ - (.*)$/mg;
my @notok = $out =~ /^not ok \d+ - (.*)$/mg;
my ($plan) = $out =~ /^1\.\.(\d+)$/m;
ok($plan && $plan >= 30, 'client ran all its checks') or diag($out);
is(scalar @ok, $plan // -1, "all $plan client checks passed");
is("@notok", '', 'no client check failed');
diag($out) if @notok || !$plan;

like($srv->cmd('version'), qr/\AVERSION /, 'server fine after the client');

done_testing();
