#!/usr/bin/perl
# Warm restart (-e FILE, doc/restart.txt): which stops save the memory
# file (SIGUSR1, SIGTERM, "shutdown graceful") and which do not (SIGINT,
# "shutdown", SIGKILL), what comes back (values, flags, CAS, deadlines,
# the hash table's size), and that a damaged file starts the node empty
# with a log line saying why, never a crash.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use MemcTest;
use Test::More;

my $dir = tmp_dir();
my $file = "$dir/mem";
my @args = ('-e', $file, '-I', '2m', '-A');

sub start { return new_server(@args, @_); }

# a server holding a known set of items; returns it and their CAS values
sub fill {
    my ($s) = @_;
    is($s->mem_set('plain', 'hello', 42, 0), "STORED\r\n", 'set plain');
    is($s->mem_set('ttl_long', 'stays', 0, 3600), "STORED\r\n", 'set long');
    is($s->mem_set('ttl_short', 'goes', 0, 2), "STORED\r\n", 'set short');
    is($s->mem_set('big', 'x' x 1_500_000, 0, 0), "STORED\r\n", 'set big');
    is($s->mem_set('gone', 'soon', 0, 0), "STORED\r\n", 'set gone');
    is($s->cmd('delete gone'), "DELETED\r\n", 'delete gone');
    return { map { $_ => $s->mem_cas($_) } qw(plain ttl_long big) };
}

sub check_back {
    my ($s, $cas, $what) = @_;
    my ($v, $flags, $c) = $s->mem_get('plain');
    is($v, 'hello', "$what: value back");
    is($flags, 42, "$what: flags back");
    is($c, $cas->{plain}, "$what: CAS back");
    is(scalar $s->mem_get('ttl_long'), 'stays', "$what: live deadline kept");
    is(scalar($s->mem_get('big')) // '', 'x' x 1_500_000, "$what: 1.5 MB item");
    is(scalar $s->mem_get('gone'), undef, "$what: deleted stays deleted");
    my $ttl = $s->cmd_lines('mg ttl_long t', undef, qr/^(?:HD|EN)/);
    like($ttl, qr/^HD t(\d+)/, "$what: mg shows a ttl");
    my ($left) = $ttl =~ /t(\d+)/;
    ok(defined $left && $left <= 3600 && $left > 3000,
       "$what: deadline is the same absolute time");
}

sub cold {
    my ($s, $why, $what) = @_;
    is(scalar $s->mem_get('plain'), undef, "$what: starts empty");
    like($s->log_text, $why, "$what: the log says why");
}

# --- clean stops that save ---------------------------------------------
my $s = start();
like($s->log_text, qr/no clean-shutdown marker.*empty cache/,
     'first start: cold, and says so');
is($s->stats('settings')->{memory_file}, $file, 'stats settings memory_file');
my $cas = fill($s);
my $hp = $s->stats->{hash_power_level};
is($s->stop('USR1'), 0, 'SIGUSR1: clean exit');
ok(-s $file && -s "$file.meta", 'SIGUSR1 wrote the file and its marker');
like($s->log_text, qr/saved \d+ items, 0 tombstones/, 'the log counts what was saved');

$s = start();
check_back($s, $cas, 'after SIGUSR1');
ok(!-e "$file.meta", 'the marker is used up at start');
is($s->stats->{hash_power_level}, $hp, 'hash power level kept');
is($s->stop('TERM'), 0, 'SIGTERM: clean exit');
ok(-s "$file.meta", 'SIGTERM saved too (systemd stops with it)');

$s = start();
check_back($s, $cas, 'after SIGTERM');
# the 2-second item expired while we were stopped or since
ok(wait_until(sub { !defined $s->mem_get('ttl_short') }, 10),
   'a deadline passed while stopped still expires');
$s->send("shutdown graceful\r\n");
ok(wait_until(sub { !$s->is_alive }, 10), 'it stopped');
ok(-s "$file.meta", '"shutdown graceful" saved');

$s = start();
check_back($s, $cas, 'after shutdown graceful');

# --- stops that do not save --------------------------------------------
is($s->stop('INT'), 0, 'SIGINT: clean exit');
ok(!-e "$file.meta", 'SIGINT does not save (as memcached)');
$s = start();
cold($s, qr/no clean-shutdown marker/, 'after SIGINT');
fill($s);
$s->stop('KILL');
$s = start();
cold($s, qr/no clean-shutdown marker/, 'after SIGKILL');
$cas = fill($s);
$s->send("shutdown\r\n");
ok(wait_until(sub { !$s->is_alive }, 10), 'it stopped');
ok(!-e "$file.meta", 'plain "shutdown" does not save (as memcached)');

# --- damaged files: cold start, a log line, no crash -------------------
sub saved {
    my $s = start();
    my $c = fill($s);
    is($s->stop('USR1'), 0, 'saved');
    return $c;
}
sub patch {
    my ($off, $bytes) = @_;
    open my $fh, '+<', $file or die "$file: $!";
    binmode $fh;
    seek $fh, $off, 0;
    print $fh $bytes;
    close $fh;
}

saved();
patch((-s $file) - 100, 'garbage');
$s = start();
cold($s, qr/checksum mismatch/, 'a corrupt byte');
$s->stop('INT');

saved();
truncate($file, (-s $file) - 1) or die;
$s = start();
cold($s, qr/not the one its marker recorded/, 'a truncated file');
$s->stop('INT');

saved();
{
    # the marker agrees with the cut file: the header notices
    my $m = MemcTest::slurp("$file.meta");
    my $n = (-s $file) - 5000;
    truncate($file, $n) or die;
    $m =~ s/bytes \d+/bytes $n/;
    open my $fh, '>', "$file.meta" or die;
    print $fh $m;
    close $fh;
}
$s = start();
cold($s, qr/truncated or extended/, 'a truncated file and marker');
$s->stop('INT');

saved();
patch(24, pack('V', 99));
$s = start();
cold($s, qr/header checksum mismatch/, 'a damaged header');
$s->stop('INT');

saved();
patch(8, pack('V', 99));
$s = start();
cold($s, qr/written by another version \(format\)/,
     'a file of another format');
$s->stop('INT');

saved();
patch(0, 'NOTOURS!');
$s = start();
cold($s, qr/not a paircached memory file;/, 'a foreign file');
$s->stop('INT');

saved();
unlink $file;
$s = start();
cold($s, qr/the marker is there but the file is not/, 'a missing file');
$s->stop('INT');

saved();
{
    open my $fh, '>', "$file.meta" or die;
    print $fh "paircached memory file\nformat 7\n";
    close $fh;
}
$s = start();
cold($s, qr/marker is unreadable or of another version/,
     'a marker of another format');
$s->stop('INT');

saved();
$s = new_server('-e', $file, '-I', '1m');
cold($s, qr/another item size max/, 'another -I');
$s->stop('INT');

# an empty (or foreign) marker: refuse to start, as memcached does
{
    open my $fh, '>', "$file.meta" or die;
    close $fh;
    my ($st, $out) = run_cmd([memc_bin(), '-p', free_port(), '-l',
                              '127.0.0.1', ($> == 0 ? ('-u', 'root') : ()),
                              '-e', $file]);
    isnt($st, 0, 'an empty marker: the server does not start');
    like($out, qr/not a paircached memory file marker/, '... and says why');
    ok(-e "$file.meta", '... leaving the file for the operator');
    unlink "$file.meta";
}

done_testing();
