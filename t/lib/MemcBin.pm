package MemcBin;

# memcached binary protocol helpers for the t/binary*.t tests: opcode
# and status constants, request packing, response reading/unpacking
# on a MemcTest server's sockets, and a server class for SASL servers
# (which refuse the text "version" that MemcTest's start-up check
# sends).  Raw I/O, start/stop and polling stay in MemcTest.
#
# Header (24 bytes, big-endian):
#   magic(8) opcode(8) keylen(16) extlen(8) datatype(8)
#   vbucket-or-status(16) bodylen(32) opaque(32) cas(64)

use strict;
use warnings;

use Carp qw(croak);
use Exporter qw(import);
use MemcTest;

our @EXPORT = qw(bin_req bin_res bin_err bin_read bin_cmd bin_send bin_hex
                 bin_resp bin_is bin_no_reply bin_stats bin_closed
                 set_extras incr_extras %OP %ST %ERRTEXT);

# ---------------------------------------------------------------------------
# constants

use constant {
    REQ_MAGIC  => 0x80,
    RES_MAGIC  => 0x81,
    HDR_LEN    => 24,
};

our %OP = (
    GET => 0x00, SET => 0x01, ADD => 0x02, REPLACE => 0x03,
    DELETE => 0x04, INCREMENT => 0x05, DECREMENT => 0x06, QUIT => 0x07,
    FLUSH => 0x08, GETQ => 0x09, NOOP => 0x0a, VERSION => 0x0b,
    GETK => 0x0c, GETKQ => 0x0d, APPEND => 0x0e, PREPEND => 0x0f,
    STAT => 0x10, SETQ => 0x11, ADDQ => 0x12, REPLACEQ => 0x13,
    DELETEQ => 0x14, INCREMENTQ => 0x15, DECREMENTQ => 0x16,
    QUITQ => 0x17, FLUSHQ => 0x18, APPENDQ => 0x19, PREPENDQ => 0x1a,
    VERBOSITY => 0x1b, TOUCH => 0x1c, GAT => 0x1d, GATQ => 0x1e,
    SASL_LIST_MECHS => 0x20, SASL_AUTH => 0x21, SASL_STEP => 0x22,
    GATK => 0x23, GATKQ => 0x24,
);

our %ST = (
    SUCCESS => 0x0000, KEY_ENOENT => 0x0001, KEY_EEXISTS => 0x0002,
    E2BIG => 0x0003, EINVAL => 0x0004, NOT_STORED => 0x0005,
    DELTA_BADVAL => 0x0006, AUTH_ERROR => 0x0020,
    AUTH_CONTINUE => 0x0021, UNKNOWN_COMMAND => 0x0081,
    ENOMEM => 0x0082,
);

# the body memcached 1.6 sends with each error status
our %ERRTEXT = (
    0x0001 => 'Not found',
    0x0002 => 'Data exists for key.',
    0x0003 => 'Too large.',
    0x0004 => 'Invalid arguments',
    0x0005 => 'Not stored.',
    0x0006 => 'Non-numeric server-side value for incr or decr',
    0x0020 => 'Auth failure.',
    0x0081 => 'Unknown command',
    0x0082 => 'Out of memory',
);

# ---------------------------------------------------------------------------
# packing

# bin_req($opcode_name_or_number, key => K, extras => E, value => V,
#   opaque => O, cas => C, vbucket => VB, datatype => DT,
#   magic => M, keylen => KL, extlen => EL, bodylen => BL)
# The last three override the computed lengths (for malformed frames).
sub bin_req {
    my ($op, %a) = @_;
    $op = $OP{$op} // croak "unknown opcode name $op" if $op !~ /^\d+$/;
    my $key = $a{key} // '';
    my $ext = $a{extras} // '';
    my $val = $a{value} // '';
    my $cas = $a{cas} // 0;
    my $hdr = pack('CCnCCnNN', $a{magic} // REQ_MAGIC, $op,
                   $a{keylen} // length($key), $a{extlen} // length($ext),
                   $a{datatype} // 0, $a{vbucket} // 0,
                   $a{bodylen} // (length($ext) + length($key)
                                   + length($val)),
                   $a{opaque} // 0)
            . pack('Q>', $cas);
    return $hdr . $ext . $key . $val;
}

# the exact bytes of a response: bin_res($opcode, status => S,
#   extras => E, key => K, value => V, opaque => O, cas => C)
sub bin_res {
    my ($op, %a) = @_;
    $op = $OP{$op} // croak "unknown opcode name $op" if $op !~ /^\d+$/;
    my $key = $a{key} // '';
    my $ext = $a{extras} // '';
    my $val = $a{value} // '';
    return pack('CCnCCnNN', RES_MAGIC, $op, length($key), length($ext),
                0, $a{status} // 0,
                length($ext) + length($key) + length($val), $a{opaque} // 0)
           . pack('Q>', $a{cas} // 0) . $ext . $key . $val;
}

# the exact bytes of memcached's error response: status, its text as
# the body, no extras, no key, CAS 0
sub bin_err {
    my ($op, $status, $opaque) = @_;
    $status = $ST{$status} // croak "unknown status $status"
        if $status !~ /^\d+$/;
    return bin_res($op, status => $status, value => $ERRTEXT{$status},
                   opaque => $opaque // 0);
}

# extras of SET/ADD/REPLACE: flags, exptime
sub set_extras { return pack('NN', $_[0] // 0, $_[1] // 0); }

# extras of INCREMENT/DECREMENT: delta(64), initial(64), exptime(32)
sub incr_extras {
    my ($delta, $initial, $exp) = @_;
    return pack('Q>Q>N', $delta // 1, $initial // 0, $exp // 0);
}

# unpack one full response (header + body) from bytes; returns a hashref
# or undef when the bytes are too short
sub bin_resp {
    my ($bytes) = @_;
    return undef unless defined $bytes && length $bytes >= HDR_LEN;
    my %r;
    @r{qw(magic opcode keylen extlen datatype status bodylen opaque)} =
        unpack('CCnCCnNN', $bytes);
    $r{cas} = unpack('Q>', substr($bytes, 16, 8));
    my $body = substr($bytes, HDR_LEN);
    return undef if length $body < $r{bodylen};
    $r{extras} = substr($body, 0, $r{extlen});
    $r{key} = substr($body, $r{extlen}, $r{keylen});
    $r{value} = substr($body, $r{extlen} + $r{keylen},
                       $r{bodylen} - $r{extlen} - $r{keylen});
    $r{raw} = substr($bytes, 0, HDR_LEN + $r{bodylen});
    return \%r;
}

# ---------------------------------------------------------------------------
# I/O on a MemcTest server ($srv) and one of its sockets ($s)

sub bin_send {
    my ($srv, $s, @frames) = @_;
    $srv->send(join('', @frames), $s);
}

# read one response; undef on timeout or when the server closed
sub bin_read {
    my ($srv, $s, $timeout) = @_;
    $timeout //= 5;
    my $hdr = $srv->read_bytes(HDR_LEN, $s, $timeout);
    return undef unless defined $hdr;
    my $blen = unpack('N', substr($hdr, 8, 4));
    my $body = $blen ? $srv->read_bytes($blen, $s, $timeout) : '';
    return undef unless defined $body;
    return bin_resp($hdr . $body);
}

# send one request and read its response
sub bin_cmd {
    my ($srv, $s, $op, %a) = @_;
    bin_send($srv, $s, bin_req($op, %a));
    return bin_read($srv, $s, $a{timeout});
}

# true when nothing arrives within $quiet seconds (for quiet commands)
sub bin_no_reply {
    my ($srv, $s, $quiet) = @_;
    my $d = $srv->drain($s, $quiet // 0.2);
    return $d eq '' ? 1 : 0;
}

# every response of a STAT request up to and including the empty-key
# terminator (or the first error); undef entries are never returned
sub bin_stats {
    my ($srv, $s, $key, $opaque) = @_;
    bin_send($srv, $s, bin_req('STAT', key => $key // '',
                               opaque => $opaque // 0));
    my @r;
    while (my $r = bin_read($srv, $s, 5)) {
        push @r, $r;
        last if $r->{status} || !length $r->{key};
    }
    return @r;
}

# true when the server closed $s within $timeout and sent nothing
# more before closing; false when it sent bytes or stayed open.  The
# bytes it sent, if any, go to $$got.
sub bin_closed {
    my ($srv, $s, $timeout, $got) = @_;
    my $d = $srv->drain($s, $timeout // 2);
    $$got = $d if $got;
    return 0 if length $d;
    # drain returns on close or on quiet: tell them apart
    return $srv->closed_within($s, 0.05) ? 1 : 0;
}

# printable hex of bytes (diagnostics)
sub bin_hex {
    my ($b) = @_;
    return 'undef' unless defined $b;
    return join ' ', map { sprintf '%02x', ord } split //, $b;
}

# a one-line description of a response's bytes: header fields, then
# extras and key in hex and the value (shortened when long)
sub describe {
    my ($raw) = @_;
    return 'no response (timeout or connection closed)' unless defined $raw;
    my $r = bin_resp($raw) or return 'short frame: ' . bin_hex($raw);
    my $v = $r->{value};
    my $vs = length($v) > 48
        ? sprintf('%d bytes starting %s', length $v, bin_hex(substr $v, 0, 16))
        : ($v =~ /[^\x20-\x7e]/ ? 'hex ' . bin_hex($v) : "\"$v\"");
    return sprintf('magic=%02x op=%02x keylen=%d extlen=%d dt=%d status=%04x'
                   . ' bodylen=%d opaque=%08x cas=%s extras=[%s] key=[%s]'
                   . ' value=%s', @$r{qw(magic opcode keylen extlen datatype
                   status bodylen opaque cas)}, bin_hex($r->{extras}),
                   $r->{key}, $vs);
}

# Test::More check that a response ($r from bin_read, or undef) is
# exactly the frame $want (bytes, e.g. from bin_res/bin_err)
sub bin_is {
    my ($r, $want, $name) = @_;
    local $Test::Builder::Level = ($Test::Builder::Level // 1) + 1;
    my $raw = ref $r ? $r->{raw} : $r;
    my $ok = defined $raw && $raw eq $want;
    Test::More::ok($ok, $name)
        or Test::More::diag("     got: " . describe($raw)
                            . "\nexpected: " . describe($want));
    return $ok;
}

# ---------------------------------------------------------------------------
# a server that may only speak binary (SASL): ready when it answers a
# binary VERSION.  Everything else is MemcTest.

package MemcBin::Server;
our @ISA = ('MemcTest');

sub _answers_version {
    my ($self) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => $self->{host},
                                  PeerPort => $self->{port},
                                  Proto => 'tcp', Timeout => 1)
        or return 0;
    binmode $s;
    my $ok = eval {
        MemcTest::_write_all($s, MemcBin::bin_req('VERSION',
                                                  opaque => 7), 2);
        my $r = MemcBin::bin_read($self, $s, 2);
        $r && $r->{magic} == 0x81 && $r->{opcode} == 0x0b
            && $r->{status} == 0;
    };
    close $s;
    return $ok ? 1 : 0;
}

1;
