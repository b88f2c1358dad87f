//! grete's in-memory mock cluster served over real TCP sockets on 127.0.0.1, for the
//! blocking transport's tests: one listener thread per broker, one thread per connection.

#![allow(dead_code)]

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use grete::mock::{MockCluster, MockConfig, MockTransmit};
use grete_blocking::{Bootstrap, BrokerAddress, BrokerVersion, ClientConfig, KafkaClient};

/// A mock cluster whose brokers listen on 127.0.0.1 ports.
pub struct MockServer {
    cluster: Arc<Mutex<MockCluster>>,
    pub ports: Vec<u16>,
    stop: Arc<AtomicBool>,
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

impl MockServer {
    pub fn start(config: MockConfig) -> MockServer {
        MockServer::start_with(config, &[])
    }

    /// Like [`start`](Self::start), but the brokers in `black_holes` accept connections
    /// and then never read nor answer.
    pub fn start_with(mut config: MockConfig, black_holes: &[i32]) -> MockServer {
        let listeners: Vec<TcpListener> = config
            .brokers
            .iter()
            .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind"))
            .collect();
        let mut ports = Vec::new();
        for (b, l) in config.brokers.iter_mut().zip(&listeners) {
            b.host = "127.0.0.1".into();
            b.port = l.local_addr().expect("addr").port();
            ports.push(b.port);
        }
        let cluster = Arc::new(Mutex::new(MockCluster::new(config)));
        let stop = Arc::new(AtomicBool::new(false));
        let ids: Vec<i32> = cluster
            .lock()
            .unwrap()
            .config()
            .brokers
            .iter()
            .map(|b| b.id)
            .collect();
        for ((listener, port), id) in listeners.into_iter().zip(ports.clone()).zip(ids) {
            let (cluster, stop) = (cluster.clone(), stop.clone());
            let black_hole = black_holes.contains(&id);
            listener.set_nonblocking(true).expect("nonblocking");
            thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((s, _)) if black_hole => {
                            let stop = stop.clone();
                            thread::spawn(move || {
                                while !stop.load(Ordering::SeqCst) {
                                    thread::sleep(Duration::from_millis(20));
                                }
                                drop(s);
                            });
                        }
                        Ok((s, _)) => {
                            let (cluster, stop) = (cluster.clone(), stop.clone());
                            thread::spawn(move || serve(s, port, &cluster, &stop));
                        }
                        Err(_) => thread::sleep(Duration::from_millis(5)),
                    }
                }
            });
        }
        MockServer {
            cluster,
            ports,
            stop,
        }
    }

    pub fn cluster(&self) -> MutexGuard<'_, MockCluster> {
        self.cluster.lock().unwrap()
    }

    pub fn bootstrap(&self) -> String {
        let list: Vec<String> = self
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        list.join(",")
    }
}

/// One client connection: socket bytes in and out of the mock broker, polled every 2 ms.
fn serve(mut s: TcpStream, port: u16, cluster: &Mutex<MockCluster>, stop: &AtomicBool) {
    let _ = s.set_read_timeout(Some(Duration::from_millis(2)));
    let Ok(conn) = cluster
        .lock()
        .unwrap()
        .connect_addr(Instant::now(), "127.0.0.1", port)
    else {
        return; // A down broker: close at once.
    };
    let mut buf = vec![0u8; 64 * 1024];
    let mut out = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let read = match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => 0,
            Err(_) => break,
        };
        let now = Instant::now();
        let mut c = cluster.lock().unwrap();
        if read > 0 {
            c.handle_data(now, conn, &buf[..read]);
        }
        if c.poll_timeout().is_some_and(|t| t <= now) {
            c.handle_timeout(now);
        }
        out.clear();
        let mut closed = false;
        while let Some(t) = c.poll_transmit(now, conn, &mut out) {
            if t == MockTransmit::Closed {
                closed = true;
                break;
            }
        }
        if !closed && !c.is_open(conn) {
            closed = true;
        }
        drop(c);
        if !out.is_empty() && s.write_all(&out).is_err() {
            break;
        }
        if closed {
            let _ = s.shutdown(std::net::Shutdown::Both);
            return;
        }
    }
    cluster.lock().unwrap().close(conn);
}

pub fn client(server: &MockServer) -> KafkaClient {
    KafkaClient::connect(ClientConfig {
        bootstrap: Bootstrap::Brokers(BrokerAddress::parse(&server.bootstrap()).unwrap()),
        request_timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(2),
        metadata_max_age: Duration::from_secs(60),
        // The mock brokers are modern: ask them for their API versions.
        broker_version: BrokerVersion::new(2, 8, 0),
        ..ClientConfig::default()
    })
    .expect("connect")
}
