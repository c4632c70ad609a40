package MemcTLS;
# Helpers for tests of -Z (TLS on the client ports): a self-signed
# certificate made with the openssl command, a server with one TLS
# listener and one plain "notls:" listener (the plain one answers the
# readiness check and serves monitoring), and TLS client sockets
# (IO::Socket::SSL; MemcTest's line and byte readers work on them).

use strict;
use warnings;
use Exporter 'import';
use Carp qw(croak);
use MemcTest;

our @EXPORT_OK = qw(tls_skip_reason self_signed tls_server tls_sock);

# why TLS tests cannot run here, or undef
sub tls_skip_reason {
    my $help = `${\ MemcTest::memc_bin()} -h 2>&1`;
    return 'this build has no -Z' unless $help =~ /enable-ssl/;
    return 'IO::Socket::SSL missing (libio-socket-ssl-perl)'
        unless eval { require IO::Socket::SSL; 1 };
    return 'the openssl command is not installed' unless _openssl();
    return undef;
}

sub _openssl {
    return (grep { -x "$_/openssl" } split(/:/, $ENV{PATH} // ''),
            '/usr/bin')[0];
}

# ($cert, $key) files of a fresh self-signed ECDSA P-256 certificate
sub self_signed {
    my ($dir, $name, $cn) = @_;
    $cn //= $name;
    my $o = _openssl() . '/openssl';
    my $out = `$o req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=$cn -keyout $dir/$name.key -out $dir/$name.pem 2>&1`;
    croak "openssl req failed: $out" if $?;
    return ("$dir/$name.pem", "$dir/$name.key");
}

# a -Z server: TLS on $srv->{tls_port}, plain text on $srv->port;
# extra server arguments in @args
sub tls_server {
    my ($cert, $key, @args) = @_;
    my $last = '';
    for (1 .. 3) {
        my ($plain, $tls) = (MemcTest::free_port(), MemcTest::free_port());
        next if $plain == $tls;
        my $srv = eval {
            MemcTest->start({
                no_default_args => 1, port => $plain,
                args => ['-U', '0', '-p', $tls, '-Z',
                         '-o', "ssl_chain_cert=$cert,ssl_key=$key",
                         '-l', "notls:127.0.0.1:$plain,127.0.0.1:$tls",
                         @args] });
        };
        if ($srv) {
            $srv->{tls_port} = $tls;
            return $srv;
        }
        $last = $@;
        last unless $last =~ /in use|failed to listen|bind/i;
    }
    croak "TLS server did not start: $last";
}

# a TLS client connection to $port (no certificate check), or undef
# with the reason in $@ / $IO::Socket::SSL::SSL_ERROR
sub tls_sock {
    my ($port, %o) = @_;
    require IO::Socket::SSL;
    my $s = IO::Socket::SSL->new(
        PeerAddr => '127.0.0.1', PeerPort => $port, Timeout => 5,
        SSL_verify_mode => IO::Socket::SSL::SSL_VERIFY_NONE(), %o);
    if ($s) {
        $s->autoflush(1);
        binmode $s;
    }
    return $s;
}

1;
