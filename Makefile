# Developer commands, as the seed lists them (each a thin wrapper of scripts/).
.PHONY: all install build run test test-asan test-tsan test-containers image lint fmt ssl protos deb clean

all: build

install build:         ## install the Debian packages needed and build into build/
	scripts/setup.sh

run:                   ## the main example
	scripts/run-example.sh

test:                  ## the whole suite
	scripts/test.sh

test-asan:             ## the suite under AddressSanitizer + UndefinedBehaviorSanitizer
	scripts/test.sh --sanitize=address,undefined

test-tsan:             ## the suite under ThreadSanitizer
	scripts/test.sh --sanitize=thread

test-containers:       ## the image, Compose and Kubernetes manifests run with podman (root)
	scripts/test-containers.sh

image:                 ## the server image, eventsourcing-grpc:v1 (podman, or docker with DOCKER=docker)
	$${DOCKER:-podman} build -t eventsourcing-grpc:v1 -f docker/Dockerfile .

lint:                  ## formatting check
	scripts/lint.sh

fmt:                   ## reformat the C code
	scripts/fmt.sh

ssl:                   ## a test PKI in ./ssl (root CA; orders, reservations, payments, localhost)
	scripts/make-ssl.sh ssl

protos:                ## regenerate the protobuf-c code from proto/ (also done by every build)
	cmake --build build --target esg_grpc

deb:                   ## the Debian package, in build-deb/
	scripts/make-deb.sh

clean:
	rm -rf build build-address-undefined build-thread build-deb build-containers
