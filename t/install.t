#!/usr/bin/perl
# make install (into a DESTDIR): the server as bin/paircached and no
# bin/memcached (nothing shadows Debian's /usr/bin/memcached unless asked
# with make install-memcached-link, which says so), the man page, the
# docs, the example configurations, the systemd unit (checked with
# systemd-analyze verify) and the wrapper, which starts the installed
# server with the options of a memcached.conf-style file; make uninstall
# removes it all.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Find;
use Test::More;
use MemcTest;

my $build = $ENV{PAIRCACHED_BUILDDIR};
plan skip_all => 'run from make check (PAIRCACHED_BUILDDIR)'
    unless $build && -f "$build/Makefile";
my $dest = tmp_dir() . '/dest';

sub files_under {
    my ($root) = @_;
    my @f;
    find({ wanted => sub { push @f, $File::Find::name if -f $_ || -l $_ },
           no_chdir => 1 }, $root) if -d $root;
    return map { substr($_, length $root) } @f;
}

my ($st, $out) = run_cmd(['make', '-s', '-C', $build, 'install',
                          "DESTDIR=$dest"], timeout => 300);
is($st, 0, 'make install DESTDIR=...') or diag($out);
like($out, qr/installed as \S+\/paircached; no memcached/,
     'make install says what it installed and that nothing shadows');
my @files = files_under($dest);
my %by = map { (m{([^/]+)$})[0] => $_ } @files;
for my $want (qw(paircached paircached-check paircached.1 README.md
                 operations.txt replication.txt paircached.conf pair-a.conf
                 pair-b.conf paircached.service paircached-wrapper)) {
    ok($by{$want}, "installs $want" . ($by{$want} ? " ($by{$want})" : ''));
}
ok(!grep(m{/bin/memcached$}, @files), 'installs no bin/memcached');
like($by{'paircached.1'} // '', qr{/man/man1/paircached\.1$},
     'man page in man1');
like($by{'paircached.service'} // '', qr{/lib/systemd/system/},
     'unit in lib/systemd/system');

# the unit names the installed wrapper and configuration
my $unit = MemcTest::slurp("$dest$by{'paircached.service'}");
my ($exec) = $unit =~ /^ExecStart=(\S+)/m;
is($exec, ($by{'paircached-wrapper'} // ''),
   'ExecStart= is the installed wrapper');
unlike($unit, qr/\@\w+\@/, 'no placeholder left in the unit');
SKIP: {
    skip 'no systemd-analyze', 1
        if system('systemd-analyze --version >/dev/null 2>&1') != 0;
    # The unit as installed, its paths moved into DESTDIR so that the
    # commands it names exist (verify checks them); --man=no: the man
    # page is not installed in the system's path.
    my $d = tmp_dir() . '/verify';
    mkdir $d;
    my $u = $unit;
    my ($prefix) = $by{paircached} =~ m{^(.*)/bin/paircached$};
    $u =~ s/(?<=[=\s])\Q$prefix\E\//$dest$prefix\//g;
    open my $uf, '>', "$d/paircached.service" or die;
    print $uf $u;
    close $uf;
    my ($vs, $vo) = run_cmd(['systemd-analyze', 'verify', '--man=no',
                             "$d/paircached.service"], timeout => 60);
    is($vo, '', 'systemd-analyze verify: no complaint') or diag($vo);
}

# the wrapper runs the installed server with the file's options
SKIP: {
    my $wrapper = "$dest" . ($by{'paircached-wrapper'} // '');
    skip 'no wrapper installed', 6 unless -x $wrapper;
    my $port = free_port();
    my $conf = tmp_dir() . '/paircached.conf';
    open my $fh, '>', $conf or die;
    print $fh <<"EOF";
# test configuration
-p $port
-l 127.0.0.1   # loopback only
-d
logfile /nonexistent/paircached.log

-c 77 -m 12
-o idle_timeout=7
-o lru_crawler_sleep=321
EOF
    print $fh "-u root\n" if $> == 0;
    close $fh;
    my $srv = bless { port => $port, host => '127.0.0.1', owner => $$,
                      args => [] }, 'MemcTest';
    my $pid = fork // die;
    if ($pid == 0) {
        open STDOUT, '>', tmp_dir() . '/wrapper.log';
        open STDERR, '>&', \*STDOUT;
        $ENV{PAIRCACHED_BIN} = "$dest$by{paircached}";
        exec $wrapper, $conf;
        exit 127;
    }
    $srv->{pid} = $pid;
    MemcTest::adopt_pid($pid);
    ok(wait_until(sub { $srv->_answers_version }, 15),
       'the wrapper starts the server (in the foreground: -d dropped)')
        or diag(MemcTest::slurp(tmp_dir() . '/wrapper.log'));
    my $s = $srv->stats('settings');
    is($s->{maxconns}, 77, 'two options on one line (-c)');
    is($s->{maxbytes}, 12 * 1048576, '... both taken (-m)');
    is($s->{idle_timeout}, 7, '-o on its own line');
    is($s->{lru_crawler_sleep}, 321, 'a second -o line adds to the first');
    is($srv->stats->{pid}, $pid, 'the wrapper execs the server');
    kill 'TERM', $pid;
    waitpid($pid, 0);
}

# the opt-in compatibility link, and uninstall
($st, $out) = run_cmd(['make', '-s', '-C', $build, 'install-memcached-link',
                       "DESTDIR=$dest"], timeout => 60);
my ($link) = grep { m{/bin/memcached$} } files_under($dest);
ok($link && -l "$dest$link" && readlink("$dest$link") eq 'paircached',
   'install-memcached-link: bin/memcached -> paircached');
like($out, qr/WARNING: .*shadows\s+\/usr\/bin\/memcached/,
     '... and warns that it shadows /usr/bin/memcached');
($st, $out) = run_cmd(['make', '-s', '-C', $build, 'uninstall',
                       "DESTDIR=$dest"], timeout => 120);
is($st, 0, 'make uninstall') or diag($out);
is(join(' ', files_under($dest)), '', 'uninstall leaves no file');

done_testing();
