// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "mergegraph",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "mergegraph", targets: ["mergegraph"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
    ],
    targets: [
        .systemLibrary(name: "CYAML", pkgConfig: "yaml-0.1", providers: [.apt(["libyaml-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .target(name: "IR"),
        .target(name: "CFileOps"),
        .target(name: "CPUHints"),
        .target(name: "CMemoryOps"),
        .target(name: "CStoppers", dependencies: ["CPUHints"]),
        .target(name: "CSignConsensus", dependencies: ["CPUHints"]),
        .target(name: "CMultislerp", dependencies: ["CPUHints"]),
        .target(name: "Parser", dependencies: ["IR", "CYAML"]),
        .target(
            name: "Checkpoint",
            dependencies: ["IR", "CZlib", "CFileOps"],
            swiftSettings: [.unsafeFlags(["-Ounchecked", "-cross-module-optimization"], .when(configuration: .release))]
        ),
        .target(
            name: "Hub",
            dependencies: ["Checkpoint", "IR", .product(name: "Crypto", package: "swift-crypto")]
        ),
        .target(name: "Planner", dependencies: ["IR", "Parser", "Checkpoint"]),
        .target(
            name: "Executor",
            dependencies: [
                "IR", "Checkpoint", "CFileOps", "CPUHints", "CMemoryOps", "CStoppers", "CSignConsensus", "CMultislerp",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: [.unsafeFlags(["-Ounchecked", "-cross-module-optimization"], .when(configuration: .release))]
        ),
        .executableTarget(
            name: "mergegraph",
            dependencies: [
                "IR", "Parser", "Checkpoint", "Planner", "Executor", "Hub",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "IRTests", dependencies: ["IR"]),
        .testTarget(name: "ParserTests", dependencies: ["Parser", "IR"]),
        .testTarget(name: "CheckpointTests", dependencies: ["Checkpoint", "IR"]),
        .testTarget(name: "HubTests", dependencies: ["Hub", "Checkpoint", "IR"]),
        .testTarget(name: "PlannerTests", dependencies: ["Planner", "Parser", "Checkpoint", "IR"]),
        .testTarget(name: "ExecutorTests", dependencies: ["Executor", "Checkpoint", "Planner", "IR", "CStoppers"]),
        .testTarget(name: "EndToEndTests", dependencies: [
            "Executor", "Checkpoint", "Planner", "Parser", "IR", "Hub", "mergegraph",
            .product(name: "Crypto", package: "swift-crypto"),
        ], exclude: ["Golden", "PendingCases.txt"]),
    ]
)
