@testable import Hub
import XCTest

/// The environment as huggingface_hub reads it, and which references are repo ids.
final class HubSettingsTests: XCTestCase {
    func testEnvironmentGivesEndpointCacheTokenAndOfflineMode() throws {
        let home = NSTemporaryDirectory() + "hub-home-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: home) }
        let defaults = HubSettings.fromEnvironment(["HOME": home])
        XCTAssertEqual(defaults.endpoint, "https://huggingface.co")
        XCTAssertEqual(defaults.cacheDirectory, home + "/.cache/huggingface/hub")
        XCTAssertNil(defaults.token)
        XCTAssertFalse(defaults.offline)
        XCTAssertEqual(HubSettings.fromEnvironment(["HOME": home, "XDG_CACHE_HOME": "/x"]).cacheDirectory, "/x/huggingface/hub")
        XCTAssertEqual(HubSettings.fromEnvironment(["HOME": home, "HF_HOME": "~/hf"]).cacheDirectory, home + "/hf/hub")
        XCTAssertEqual(HubSettings.fromEnvironment(["HF_HOME": "/h", "HF_HUB_CACHE": "/c"]).cacheDirectory, "/c")
        XCTAssertEqual(HubSettings.fromEnvironment(["HUGGINGFACE_HUB_CACHE": "/old"]).cacheDirectory, "/old")
        XCTAssertEqual(HubSettings.fromEnvironment(["HF_HUB_CACHE": "/c"], cacheDirectory: "/mine").cacheDirectory, "/mine")
        XCTAssertEqual(HubSettings.fromEnvironment(["HF_ENDPOINT": "http://127.0.0.1:9/"]).endpoint, "http://127.0.0.1:9")
        for (value, offline) in [("1", true), ("true", true), ("ON", true), ("yes", true), ("0", false), ("", false)] {
            XCTAssertEqual(HubSettings.fromEnvironment(["HF_HUB_OFFLINE": value]).offline, offline, value)
        }
        XCTAssertTrue(HubSettings.fromEnvironment(["TRANSFORMERS_OFFLINE": "1"]).offline)
        // The token: HF_TOKEN, else the token file huggingface_hub writes.
        try "hf_file\n".write(toFile: home + "/token", atomically: true, encoding: .utf8)
        XCTAssertEqual(HubSettings.fromEnvironment(["HF_HOME": home]).token, "hf_file")
        XCTAssertEqual(HubSettings.fromEnvironment(["HF_HOME": home, "HF_TOKEN": "hf_env"]).token, "hf_env")
        XCTAssertEqual(HubSettings.fromEnvironment(["HF_TOKEN_PATH": home + "/token"]).token, "hf_file")
    }

    func testRepoIDs() {
        for id in ["gpt2", "mistralai/Mistral-7B-v0.1", "org_1/name.v2", "a/b"] { XCTAssertTrue(HubSettings.isRepoID(id), id) }
        for path in ["./models/x", "../x", "/abs/path", "a/b/c", "a--b/c", "a/b..c", "-a/b", "a/b-", "", "a/", "x.git"] {
            XCTAssertFalse(HubSettings.isRepoID(path), path)
        }
        XCTAssertTrue(HubSettings.isCommitHash(String(repeating: "a1", count: 20)))
        XCTAssertFalse(HubSettings.isCommitHash("main"))
    }
}
