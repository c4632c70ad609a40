package MemcMeta;

# Helpers for the meta protocol tests (t/meta_*.t): send raw bytes and
# collect every reply byte up to a trailing "version" (so replies of
# any shape, quiet or not, are read without guessing their length),
# a few reply parsers, and a check for replies holding a remaining TTL
# ("t<secs>"), which may have ticked down by a second or two.

use strict;
use warnings;

use Carp qw(croak);
use Exporter qw(import);
use Test::More;

our @EXPORT = qw(exchange mcmd mcas is_ttl esc);

# the server's "version" reply line, asked once per server
my %VERSION;

sub version_line {
    my ($srv, $s) = @_;
    $VERSION{"$srv->{host}:$srv->{port}"} //= $srv->cmd('version', $s);
    return $VERSION{"$srv->{host}:$srv->{port}"};
}

# Send $bytes, then "version\r\n"; return all reply bytes that came
# before the version reply (undef, with a diag, on a timeout).
sub exchange {
    my ($srv, $bytes, $s, $timeout) = @_;
    $s ||= $srv->sock;
    my $version = version_line($srv, $s);
    $srv->send($bytes . "version\r\n", $s);
    my $got = '';
    while (1) {
        my $l = $srv->read_line($s, $timeout);
        if (!defined $l) {
            diag('no version reply; got so far: ' . esc($got));
            return undef;
        }
        return $got if $l eq $version;
        $got .= $l;
    }
}

# one command line, CRLF added
sub mcmd {
    my ($srv, $line, $s) = @_;
    return exchange($srv, "$line\r\n", $s);
}

# cas of a key via "mg <key> c" (undef on a miss); extra flags such
# as "b" may follow the key
sub mcas {
    my ($srv, $key, $s) = @_;
    my $r = mcmd($srv, "mg $key c", $s) // '';
    return $r =~ /\AHD c(\d+)(?: [A-Z])*\r\n\z/ ? $1 : undef;
}

# is_ttl($got, $want, $name): $want is the exact expected reply, where
# each "{N}" stands for a number from N-2 to N (a TTL counting down
# while the test runs).
sub is_ttl {
    my ($got, $want, $name) = @_;
    my @parts = split /\{(\d+)\}/, $want, -1;
    my $re = '';
    my @ttl;
    while (@parts) {
        $re .= quotemeta(shift @parts);
        if (@parts) {
            push @ttl, shift @parts;
            $re .= '(\d+)';
        }
    }
    my $ok = defined $got && $got =~ /\A$re\z/s;
    my @n = $ok ? ($got =~ /\A$re\z/s) : ();
    for my $i (0 .. $#ttl) {
        $ok = 0 unless $n[$i] <= $ttl[$i] && $n[$i] >= $ttl[$i] - 2;
    }
    ok($ok, $name) or diag('got:  ' . esc($got) . "\nwant: " . esc($want));
    return $ok;
}

# printable form of reply bytes for diagnostics
sub esc {
    my ($x) = @_;
    return 'undef' unless defined $x;
    $x =~ s/\\/\\\\/g;
    $x =~ s/\r/\\r/g;
    $x =~ s/\n/\\n/g;
    $x =~ s/([^\x20-\x7e])/sprintf('\\x%02x', ord $1)/ge;
    return $x;
}

1;
